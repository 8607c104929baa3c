# Multi-stage build: compile with the Rust toolchain, run on a slim Debian as a non-root user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
COPY assets ./assets
COPY migrations ./migrations
RUN cargo build --release --locked --bin identify-bridge

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/identify-bridge --create-home identify-bridge
COPY --from=build /src/target/release/identify-bridge /usr/local/bin/identify-bridge
USER 10001:10001
WORKDIR /var/lib/identify-bridge
EXPOSE 8080
ENTRYPOINT ["identify-bridge"]
CMD ["serve", "--config", "/etc/identify-bridge/bridge.toml"]
