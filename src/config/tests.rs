//! Loading what no kind of provider is needed for: origins, mounted secret files, sinks.
//! Provider configurations are tested with the kinds in `providers/config_tests.rs`.

use std::io::Write;

use super::*;

/// No kinds: configuration knows none of its own (`providers::KINDS` is handed in).
const NO_KINDS: [&dyn KindSpec; 0] = [];

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    testing::load(toml, env, &NO_KINDS)
}

fn load_err(toml: &str, env: &[(&str, &str)]) -> String {
    testing::load_err(toml, env, &NO_KINDS)
}

#[test]
fn return_origins_are_parsed_once_into_bare_origins() {
    assert_eq!(
        Origin::parse("https://App.Example.com:443")
            .unwrap()
            .as_str(),
        "https://app.example.com"
    );
    assert!(Origin::parse("https://app.example.com/path").is_err());
    assert!(Origin::parse("javascript:alert(1)").is_err());
}

#[test]
fn database_and_redis_urls_come_from_mounted_files_and_not_from_both() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("database-url");
    let redis = dir.path().join("redis-url");
    std::fs::write(&db, "postgres://bridge:s3cret@db/identify\n").unwrap();
    std::fs::write(&redis, "redis://:s3cret@redis:6379/0\n").unwrap();
    let toml = format!(
        "[database]\nurl_file = \"{}\"\n[session]\nstore = \"redis\"\nredis_url_file = \"{}\"\n",
        db.display(),
        redis.display()
    );
    let settings = load(&toml, &[]).unwrap();
    assert_eq!(
        settings.database.url.expose(),
        "postgres://bridge:s3cret@db/identify"
    );
    assert_eq!(
        settings.session.redis_url.unwrap().expose(),
        "redis://:s3cret@redis:6379/0"
    );
    let both = format!(
        "[database]\nurl = \"postgres://other/db\"\nurl_file = \"{}\"\n",
        db.display()
    );
    assert!(load_err(&both, &[]).contains("database.url_file"));
}

#[test]
fn signing_secrets_are_checked_at_start_up_with_a_clear_message() {
    let sink = |secrets: &str| {
        format!(
            "[[sinks]]\nname = \"hooks\"\nformat = \"webhook\"\nurl = \"https://hooks.example.com/in\"\nsigning_secrets = {secrets}\n"
        )
    };
    let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYqr";
    let settings = load(&sink(&format!("[\"{good}\"]")), &[]).unwrap();
    assert_eq!(settings.sinks[0].signing_keys().unwrap().len(), 1);
    assert_eq!(settings.sinks[0].format, SinkFormat::Webhook);

    let e = load_err(&sink(&format!("[\"{good}\", \"not-a-secret\"]")), &[]);
    assert!(
        e.contains("`sinks[0] (hooks).signing_secrets[1]`") && e.contains("whsec_"),
        "{e}"
    );
    assert!(
        !e.contains("not-a-secret"),
        "the secret is never repeated: {e}"
    );
    let e = load_err(&sink("[\"whsec_c2hvcnQ=\"]"), &[]);
    assert!(e.contains("24 to 64 bytes"), "{e}");

    // From a file (a mounted secret), one a line; not together with the list.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signing");
    std::fs::write(&file, format!("{good}\n{good}\n")).unwrap();
    let toml = format!(
        "[[sinks]]\nname = \"hooks\"\nformat = \"webhook\"\nurl = \"https://hooks.example.com/in\"\nsigning_secrets_file = \"{}\"\n",
        file.display()
    );
    assert_eq!(load(&toml, &[]).unwrap().sinks[0].signing_secrets.len(), 2);
    let both = format!("{toml}signing_secrets = [\"{good}\"]\n");
    assert!(load_err(&both, &[]).contains("signing_secrets_file"));

    let keyed = format!("{}api_key = \"k\"\n", sink("[]"));
    assert!(load_err(&keyed, &[]).contains("webhook format sends no API key"));
}

/// A kind the caller hands in is read by its spec alone: its keys are typed and checked, a
/// key it lacks is named with the keys it has, and the schema lists it.
#[test]
fn a_kind_handed_in_is_typed_checked_and_in_the_schema() {
    #[derive(Debug, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        zone: String,
    }
    impl KindSettings for Demo {
        fn validate(&self, key: &str) -> Result<(), ConfigError> {
            match self.zone.as_str() {
                "" => Err(ConfigError::at(format!("{key}.zone"), "must not be empty")),
                _ => Ok(()),
            }
        }
    }
    static DEMO: SettingsKind<Demo> = SettingsKind::new("demo");
    let kinds: &dyn Kinds = &[&DEMO as &dyn KindSpec];
    let load_kind = |kind: &str, extra: &str| {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let toml = format!(
            "[[providers]]\nname = \"d\"\nkind = \"{kind}\"\nclient_id = \"c\"\nclient_secret = \"s\"\n{extra}"
        );
        file.write_all(toml.as_bytes()).unwrap();
        Settings::load_with_env(Some(file.path()), Vec::new(), kinds)
    };
    let load = |extra: &str| load_kind("demo", extra);
    let settings = load("zone = \"eu\"\n").unwrap();
    let kind = &settings.providers[0].kind;
    assert_eq!(kind.name(), "demo");
    assert_eq!(kind.get::<Demo>().unwrap().zone, "eu");
    let printed = settings.to_redacted_json();
    assert!(printed.contains("\"kind\": \"demo\"") && printed.contains("\"zone\": \"eu\""));
    let e = load("").unwrap_err().to_string();
    assert!(
        e.contains("`providers[0] (d).zone`: missing: required for kind = \"demo\""),
        "{e}"
    );
    let e = load("zone = \"\"\n").unwrap_err().to_string();
    assert!(
        e.contains("`providers[0] (d).zone`: must not be empty"),
        "{e}"
    );
    let e = load("zone = \"eu\"\nzones = 1\n").unwrap_err().to_string();
    assert!(e.contains("did you mean `providers[0] (d).zone`?"), "{e}");
    assert!(Settings::all_keys(kinds).contains(&"providers.zone".to_string()));
    let e = load_kind("okta", "").unwrap_err().to_string();
    assert!(
        e.contains("\"okta\" is not a kind") && e.contains("known kinds: \"demo\""),
        "{e}"
    );
}
