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
        .map(|(k, v)| (k.clone(), compose_default(v.as_str().unwrap())))
        .collect()
}

/// A value as compose gives it with the variable unset: `${VAR:-default}` is `default`.
fn compose_default(value: &str) -> String {
    match value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .and_then(|v| v.split_once(":-"))
    {
        Some((_, default)) => default.to_string(),
        None => value.to_string(),
    }
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
        let settings = Settings::load_with_env(
            Some(&root().join(host.trim_start_matches("./"))),
            env,
            &identify_bridge::providers::KINDS,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(settings.session.store, SessionStoreKind::Redis);
        assert!(settings.database.url.expose().starts_with("postgres://"));
        assert_eq!(settings.server.listen.port(), 8080);
        // Replicas share the session key, or a sign-in begun on one cannot finish on the other.
        assert!(
            settings.session.secret.is_some(),
            "{name}: no session.secret"
        );

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

/// One YAML document of deploy/kubernetes/, as JSON values.
fn manifest(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("deploy/kubernetes").join(name)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"))
}

#[test]
fn the_kubernetes_configuration_uses_only_keys_that_exist_and_reads_secrets_from_files() {
    // scripts/validate-kubernetes checks the manifests against Kubernetes' schemas; this checks
    // them against the bridge: the ConfigMap's bridge.toml loads and validates (unknown keys
    // are errors), with each `*_file` pointing at a stand-in for the mounted Secret.
    let config = manifest("configmap.yaml");
    let toml = config["data"]["bridge.toml"].as_str().unwrap();
    let deployment = manifest("deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mounts = container["volumeMounts"].as_array().unwrap();
    let secrets_at = mounts.iter().find(|m| m["name"] == "secrets").unwrap()["mountPath"]
        .as_str()
        .unwrap()
        .to_string();
    let config_at = mounts.iter().find(|m| m["name"] == "config").unwrap()["mountPath"]
        .as_str()
        .unwrap();
    assert!(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str() == Some(&format!("{config_at}/bridge.toml"))),
        "the container reads the ConfigMap's file"
    );
    let secrets = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for line in toml.lines().filter(|l| l.contains("_file")) {
        let path = line.split('"').nth(1).unwrap();
        assert!(
            path.starts_with(&secrets_at),
            "{path} is not in the mounted Secret"
        );
        let name = path.rsplit('/').next().unwrap();
        let value = match name {
            "database-url" => "postgres://bridge:secret@postgres:5432/identify_bridge",
            "redis-url" => "redis://redis:6379/0",
            "session-secret" => "a-session-key-of-at-least-32-characters",
            _ => "a-client-secret",
        };
        std::fs::write(secrets.path().join(name), value).unwrap();
        files.push(name.to_string());
    }
    for expected in ["database-url", "redis-url", "session-secret"] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} comes from a file"
        );
    }
    let local = toml.replace(&secrets_at, &secrets.path().display().to_string());
    let path = secrets.path().join("bridge.toml");
    std::fs::write(&path, local).unwrap();
    let settings =
        Settings::load_with_env(Some(&path), Vec::new(), &identify_bridge::providers::KINDS)
            .unwrap_or_else(|e| panic!("the ConfigMap's bridge.toml: {e}"));
    assert!(settings.database.url.expose().starts_with("postgres://"));
    assert_eq!(settings.session.store, SessionStoreKind::Redis);
    assert!(settings.session.redis_url.is_some());
    // Replicas share the session key, or a sign-in begun on one cannot finish on the other.
    assert!(settings.session.secret.is_some());

    // Two replicas, probed where the bridge answers, on the port it listens on.
    assert_eq!(deployment["spec"]["replicas"], 2);
    let port = container["ports"][0]["containerPort"].as_u64().unwrap();
    assert_eq!(u64::from(settings.server.listen.port()), port);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["requests"]["memory"].is_string());
    // The PodDisruptionBudget and the Service select the Deployment's pods.
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        manifest("poddisruptionbudget.yaml")["spec"]["selector"]["matchLabels"],
        *labels
    );
    let service = manifest("service.yaml");
    assert_eq!(service["spec"]["selector"], *labels);
    // The optional ServiceMonitor scrapes the Service's named port.
    let monitor = manifest("servicemonitor/servicemonitor.yaml");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    // Every resource kustomize lists exists.
    let kustomization = manifest("kustomization.yaml");
    for file in kustomization["resources"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        assert!(
            root().join("deploy/kubernetes").join(file).is_file(),
            "{file}"
        );
    }
}
