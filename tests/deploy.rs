//! No Docker engine runs where the tests run, so the container files are checked as far as
//! they can be here: docker-compose.yml parses and is consistent with the bridge's
//! configuration (which loads and validates with the compose environment), the development
//! provider's client matches, and the Dockerfile is multi-stage and runs as a non-root user.

use std::collections::BTreeSet;
use std::path::Path;

use identify_bridge::config::{SessionStoreKind, Settings};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// docker-compose.yml as JSON values, its `<<` merge keys expanded.
fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    serde_saphyr::from_str(&text).expect("docker-compose.yml is YAML")
}

fn env_of(service: &Value) -> Vec<(String, String)> {
    service["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn compose_runs_two_replicas_behind_a_proxy_with_postgres_redis_and_a_provider() {
    let compose = compose();
    let services: BTreeSet<String> = compose["services"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for expected in ["postgres", "redis", "idp", "bridge-1", "bridge-2", "proxy"] {
        assert!(
            services.contains(expected),
            "docker-compose.yml lacks {expected}"
        );
    }
    let nginx = std::fs::read_to_string(root().join("deploy/nginx.conf")).unwrap();
    assert!(nginx.contains("server bridge-1:8080") && nginx.contains("server bridge-2:8080"));
    assert!(nginx.contains("proxy_pass http://idp:9000"));
}

#[test]
fn each_replica_configuration_loads_with_the_compose_environment() {
    let compose = compose();
    for name in ["bridge-1", "bridge-2"] {
        let service = &compose["services"][name];
        let mount = service["volumes"][0].as_str().unwrap();
        let (host, container) = mount.split_once(':').unwrap();
        assert!(container.starts_with("/etc/identify-bridge/bridge.toml"));
        let env = env_of(service);
        let settings =
            Settings::load_with_env(Some(&root().join(host.trim_start_matches("./"))), env)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(settings.session.store, SessionStoreKind::Redis);
        assert!(settings.database.url.expose().starts_with("postgres://"));
        assert_eq!(settings.server.listen.port(), 8080);

        // The development provider's issuer and client match what the bridge expects.
        let idp_env = env_of(&compose["services"]["idp"]);
        let get = |k: &str| {
            idp_env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let idp_config: serde_json::Value = serde_json::from_str(&get("IDP_CONFIG")).unwrap();
        let issuer = format!(
            "{}{}",
            get("IDP_PUBLIC_ORIGIN"),
            idp_config["issuer_path"].as_str().unwrap()
        );
        let provider = &settings.providers[0];
        assert_eq!(identify_bridge::providers::issuer_of(provider), issuer);
        let client = &idp_config["clients"][0];
        assert_eq!(client["client_id"], provider.client_id.as_str());
        assert_eq!(client["client_secret"], provider.secret().unwrap().expose());
        let redirect =
            identify_bridge::providers::callback_url(&settings.server.public_url, &provider.name);
        assert_eq!(client["redirect_uris"][0], redirect.as_str());
    }
}

#[test]
fn the_dockerfile_is_multi_stage_and_runs_as_non_root() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile
            .lines()
            .filter(|l| l.starts_with("FROM "))
            .count()
            >= 2
    );
    let user = dockerfile
        .lines()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        for source in line
            .split_whitespace()
            .skip(1)
            .take_while(|w| !w.ends_with('/') || w.starts_with("./"))
        {
            if source.starts_with('.') && source != "./" {
                continue;
            }
            assert!(
                root().join(source).exists(),
                "the Dockerfile copies {source}, which does not exist"
            );
        }
    }
}
