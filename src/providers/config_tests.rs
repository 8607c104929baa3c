//! Loading provider configurations with the real kinds ([`KINDS`]): the key format of
//! errors, keys of another kind, typo suggestions, secrets, client keys, and the README's
//! configuration tables held to the schema.

use std::io::Write;

use crate::config::testing;
use crate::config::*;

use super::KINDS;

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    testing::load(toml, env, &KINDS)
}

fn load_err(toml: &str, env: &[(&str, &str)]) -> String {
    testing::load_err(toml, env, &KINDS)
}

const GOOGLE: &str = r#"
    [server]
    listen = "127.0.0.1:9000"
    public_url = "https://login.example.com"
    [[providers]]
    name = "google"
    kind = "google"
    client_id = "abc"
    client_secret = "s3cret"
"#;

const OKTA: &str = "[[providers]]\nname = \"okta\"\nkind = \"okta\"\ndomain = \"acme.okta.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";

#[test]
fn a_minimal_file_loads_with_defaults() {
    let s = load(GOOGLE, &[]).unwrap();
    assert_eq!(s.server.listen.port(), 9000);
    assert_eq!(s.providers[0].scopes, vec!["openid", "profile", "email"]);
    assert_eq!(s.providers[0].kind_name(), "google");
    assert_eq!(s.session.login_timeout_secs, 600);
}

#[test]
fn environment_overrides_plain_keys_and_providers_by_name() {
    let s = load(
        GOOGLE,
        &[
            ("IDENTIFY_BRIDGE__SERVER__LISTEN", "0.0.0.0:7000"),
            ("IDENTIFY_BRIDGE__SERVER__PROVIDER_TIMEOUT_SECS", "7"),
            (
                "IDENTIFY_BRIDGE__PROVIDERS__GOOGLE__CLIENT_SECRET",
                "from-env",
            ),
            ("IDENTIFY_BRIDGE__PROVIDERS__MY_OKTA__KIND", "okta"),
            (
                "IDENTIFY_BRIDGE__PROVIDERS__MY_OKTA__DOMAIN",
                "acme.okta.com",
            ),
            ("IDENTIFY_BRIDGE__PROVIDERS__MY_OKTA__CLIENT_ID", "0123"),
            ("IDENTIFY_BRIDGE__PROVIDERS__MY_OKTA__CLIENT_SECRET", "x"),
        ],
    )
    .unwrap();
    assert_eq!(s.server.listen.port(), 7000);
    assert_eq!(s.server.provider_timeout_secs, 7);
    assert_eq!(s.providers[0].secret().unwrap().expose(), "from-env");
    assert_eq!(s.providers[1].name, "my-okta");
    assert_eq!(s.providers[1].kind_name(), "okta");
    assert_eq!(
        s.providers[1].client_id, "0123",
        "a numeric text stays text"
    );
}

#[test]
fn errors_name_the_key_in_one_format() {
    let e = load_err(&GOOGLE.replace("127.0.0.1:9000", "nonsense"), &[]);
    assert!(e.contains("`server.listen`"), "{e}");
    let e = load_err(&GOOGLE.replace("client_secret = \"s3cret\"", ""), &[]);
    assert!(
        e.contains("`providers[0] (google).client_secret`: missing"),
        "{e}"
    );
    let e = load_err(
        &GOOGLE.replace("name = \"google\"", "name = \"go/ogle\""),
        &[],
    );
    assert!(e.contains("`providers[0].name`"), "{e}");
    let e = load_err(&format!("{GOOGLE}\nsurprise = 1\n"), &[]);
    assert!(e.contains("`providers[0] (google).surprise`"), "{e}");
    let e = load_err(
        "[[providers]]\nname = \"ms\"\nkind = \"microsoft\"\nclient_id = \"a\"\nclient_secret = \"b\"",
        &[],
    );
    assert!(
        e.contains("`providers[0] (ms).tenant`: missing: required for kind = \"microsoft\""),
        "{e}"
    );
    let e = load_err(
        "[[providers]]\nname = \"ms\"\nkind = \"microsoft\"\ntenant = \"common\"\nallowed_tenants = [\"nope\"]\nclient_id = \"a\"\nclient_secret = \"b\"",
        &[],
    );
    assert!(e.contains("`providers[0] (ms).allowed_tenants[0]`"), "{e}");
    let e = load_err(
        "[server]\nallowed_return_origins = [\"https://a.example/path\"]",
        &[],
    );
    assert!(
        e.contains("`server.allowed_return_origins[0]`") && e.contains("no path"),
        "{e}"
    );
}

#[test]
fn a_key_of_another_kind_is_an_error_naming_both_kinds() {
    let e = load_err(&format!("{OKTA}tenant = \"common\"\n"), &[]);
    assert!(
        e.contains("`providers[0] (okta).tenant`: a key of kind = \"microsoft\", and this provider has kind = \"okta\""),
        "{e}"
    );
    let e = load_err(&format!("{OKTA}trust_email_verified = true\n"), &[]);
    assert!(e.contains("a key of kind = \"oidc\""), "{e}");
    let e = load_err(&OKTA.replace("kind = \"okta\"", "kind = \"oktaa\""), &[]);
    assert!(
        e.contains("`providers[0] (okta).kind`") && e.contains("did you mean \"okta\"?"),
        "{e}"
    );
}

#[test]
fn a_typo_in_the_file_gets_the_nearest_key() {
    let e = load_err(&GOOGLE.replace("client_secret =", "client_secert ="), &[]);
    assert!(
        e.contains("`providers[0] (google).client_secert`: did you mean `providers[0] (google).client_secret`?"),
        "{e}"
    );
    let e = load_err(&GOOGLE.replace("listen =", "listn ="), &[]);
    assert!(
        e.contains("`server.listn`: did you mean `server.listen`?"),
        "{e}"
    );
    assert!(e.contains("known keys here: "), "{e}");
}

#[test]
fn a_typo_in_a_variable_names_the_variable_to_set() {
    let e = load_err(GOOGLE, &[("IDENTIFY_BRIDGE__SERVER__LISTN", "0.0.0.0:1")]);
    assert!(
        e.contains("did you mean `server.listen` (IDENTIFY_BRIDGE__SERVER__LISTEN)?")
            && e.contains("(from IDENTIFY_BRIDGE__SERVER__LISTN)"),
        "{e}"
    );
    let e = load_err(
        GOOGLE,
        &[("IDENTIFY_BRIDGE__PROVIDERS__GOOGLE__CLIENT_SECERT", "x")],
    );
    assert!(
        e.contains("(IDENTIFY_BRIDGE__PROVIDERS__GOOGLE__CLIENT_SECRET)"),
        "{e}"
    );
    let e = load_err(GOOGLE, &[("IDENTIFY_BRIDGE__SERVER__LISTEN", "nonsense")]);
    assert!(
        e.contains("`server.listen`") && e.contains("(from IDENTIFY_BRIDGE__SERVER__LISTEN)"),
        "{e}"
    );
}

#[test]
fn unknown_traits_are_named_with_the_full_list() {
    let e = load_err(
        &format!("{GOOGLE}\n[providers.traits]\nenrichment_shoe_size = \"/shoe\"\nenrichment_cty = \"/c\"\n"),
        &[],
    );
    assert!(
        e.contains("`providers[0] (google).traits.enrichment_cty`"),
        "{e}"
    );
    assert!(e.contains("did you mean \"enrichment_city\"?"), "{e}");
    assert!(
        TRAIT_NAMES.iter().all(|name| e.contains(name)),
        "the full list: {e}"
    );
    for bad in ["title", "/a~2b", "/trailing~"] {
        let e = load_err(
            &format!("{GOOGLE}\n[providers.traits]\nenrichment_employment_title = {bad:?}\n"),
            &[],
        );
        assert!(
            e.contains("enrichment_employment_title") && e.contains(bad),
            "{e}"
        );
    }
    let ok = format!("{GOOGLE}\n[providers.traits]\nenrichment_employment_title = [\"/custom/job~1title\", \"\"]\n");
    assert!(load(&ok, &[]).is_ok());
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let mut secret = tempfile::NamedTempFile::new().unwrap();
    writeln!(secret, "file-secret").unwrap();
    let toml = GOOGLE.replace(
        "client_secret = \"s3cret\"",
        &format!("client_secret_file = {:?}", secret.path()),
    );
    let s = load(&toml, &[]).unwrap();
    assert_eq!(s.providers[0].secret().unwrap().expose(), "file-secret");
    let printed = s.to_redacted_json();
    assert!(!printed.contains("file-secret"), "{printed}");
    assert!(!format!("{s:?}").contains("file-secret"));
}

#[test]
fn the_okta_users_api_needs_the_org_server() {
    let org = format!("{OKTA}users_api = true\n");
    assert!(load(&org, &[]).is_ok());
    let custom = format!("{org}authorization_server = \"default\"\n");
    let e = load_err(&custom, &[]);
    assert!(
        e.contains("providers[0] (okta).users_api") && e.contains("org authorization server"),
        "{e}"
    );
    let e = load_err(
        &GOOGLE.replace("kind = \"google\"", "kind = \"google\"\nusers_api = true"),
        &[],
    );
    assert!(e.contains("a key of kind = \"okta\""), "{e}");
}

#[test]
fn dozens_of_providers_load() {
    let mut toml = String::new();
    for i in 0..40 {
        toml.push_str(&format!(
            "[[providers]]\nname = \"tenant-{i}\"\nkind = \"okta\"\ndomain = \"t{i}.okta.com\"\nclient_id = \"c{i}\"\nclient_secret = \"s{i}\"\n"
        ));
    }
    let s = load(
        &toml,
        &[(
            "IDENTIFY_BRIDGE__PROVIDERS__TENANT_7__CLIENT_SECRET",
            "env-secret",
        )],
    )
    .unwrap();
    assert_eq!(s.providers.len(), 40);
    assert_eq!(s.providers[7].secret().unwrap().expose(), "env-secret");
    let e = load_err(
        &format!(
            "{toml}{}",
            toml.lines().take(6).collect::<Vec<_>>().join("\n")
        ),
        &[],
    );
    assert!(e.contains("another provider has this name"), "{e}");
}

#[test]
fn serve_refuses_an_open_admin_api_naming_the_key() {
    let s = load(&format!("{GOOGLE}\n[admin]\nopen = true\n"), &[]).unwrap();
    let e = s.check_for_serve().unwrap_err().to_string();
    assert!(
        e.contains("`admin.open`") && e.contains("identify-bridge dev"),
        "{e}"
    );
    assert!(load(GOOGLE, &[]).unwrap().check_for_serve().is_ok());
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Okta with `private_key_jwt` and the given key (and more) lines instead of the secret.
fn okta_private_key_jwt(lines: &str) -> String {
    format!(
        "{}\n{}",
        OKTA.replace(
            "client_secret = \"s\"",
            "token_auth_method = \"private_key_jwt\""
        ),
        lines
    )
}

#[test]
fn private_key_jwt_needs_a_key_file_and_no_secret() {
    let e = load_err(&okta_private_key_jwt(""), &[]);
    assert!(e.contains("`providers[0] (okta).private_key_file`"), "{e}");
    assert!(e.contains("required with token_auth_method"), "{e}");
    let e = load_err(
        &okta_private_key_jwt(&format!(
            "private_key_file = \"{}\"\nclient_secret = \"s\"\n",
            fixture("client-key-rsa.pem")
        )),
        &[],
    );
    assert!(e.contains("`providers[0] (okta).client_secret`"), "{e}");
    for line in [
        "private_key_file = \"/k.pem\"",
        "private_key_id = \"k1\"",
        "certificate_file = \"/c.pem\"",
    ] {
        let e = load_err(&format!("{OKTA}{line}\n"), &[]);
        assert!(e.contains("only used with token_auth_method"), "{e}");
    }
}

#[test]
fn a_private_key_that_cannot_be_read_or_used_stops_loading_naming_its_key() {
    let e = load_err(
        &okta_private_key_jwt("private_key_file = \"/nonexistent/client.pem\"\n"),
        &[],
    );
    assert!(e.contains("`providers[0] (okta).private_key_file`"), "{e}");
    assert!(e.contains("cannot read /nonexistent/client.pem"), "{e}");
    // A public key is no private key; the file's content is never shown.
    let e = load_err(
        &okta_private_key_jwt(&format!(
            "private_key_file = \"{}\"\n",
            fixture("client-key-rsa.pub.pem")
        )),
        &[],
    );
    assert!(e.contains("`providers[0] (okta).private_key_file`"), "{e}");
    assert!(e.contains("is not a PEM private key"), "{e}");
    assert!(!e.contains("MII"), "{e}");
    // A key where the certificate belongs.
    let e = load_err(
        &okta_private_key_jwt(&format!(
            "private_key_file = \"{}\"\ncertificate_file = \"{}\"\n",
            fixture("client-key-rsa.pem"),
            fixture("client-key-rsa.pem")
        )),
        &[],
    );
    assert!(e.contains("`providers[0] (okta).certificate_file`"), "{e}");
    assert!(e.contains("not a PEM certificate"), "{e}");
    assert!(!e.contains("MII"), "{e}");
}

#[test]
fn a_private_key_loads_with_its_algorithm_key_id_and_certificate_thumbprint() {
    let s = load(
        &okta_private_key_jwt(&format!(
            "private_key_file = \"{}\"\nprivate_key_id = \"k1\"\ncertificate_file = \"{}\"\n",
            fixture("client-key-rsa.pem"),
            fixture("client-cert-rsa.pem")
        )),
        &[],
    )
    .unwrap();
    let key = s.providers[0].client_key.as_ref().unwrap();
    assert_eq!(key.algorithm(), jsonwebtoken::Algorithm::RS256);
    assert_eq!(key.key_id(), Some("k1"));
    assert_eq!(
        key.thumbprint(),
        Some("jYQL_xz2GuxUtJWdl7Vt2439sx3kN-FUtyaRbRdo1fE")
    );
    // Neither Debug nor the printed configuration shows the key.
    let shown = format!("{s:?}{}", serde_json::to_string(&s).unwrap());
    assert!(!shown.contains("MII"), "{shown}");
    let s = load(
        &okta_private_key_jwt(&format!(
            "private_key_file = \"{}\"\n",
            fixture("client-key-p256.pem")
        )),
        &[],
    )
    .unwrap();
    let key = s.providers[0].client_key.as_ref().unwrap();
    assert_eq!(key.algorithm(), jsonwebtoken::Algorithm::ES256);
}

/// The README's configuration tables list exactly the keys the schema has.
#[test]
fn the_readme_tables_and_the_schema_have_the_same_keys() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let documented = readme_keys(&readme);
    let schema: std::collections::BTreeSet<String> =
        Settings::all_keys(&KINDS).into_iter().collect();
    let missing: Vec<_> = schema.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&schema).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not in the README: {missing:?}; in the README but not the schema: {extra:?}"
    );
}

/// Keys in the README's `| key | default | … |` tables. A table's keys are relative to the
/// section its introducing line names in backquotes (`[[providers]]`, `[identify_api]`, …);
/// the main table's keys are full paths. `a` / `b` rows list two keys.
fn readme_keys(readme: &str) -> std::collections::BTreeSet<String> {
    let mut keys = std::collections::BTreeSet::new();
    let mut section = String::new();
    let mut in_table = false;
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("| key |") {
            in_table = true;
            continue;
        }
        if in_table && trimmed.starts_with('|') {
            let first = trimmed
                .trim_start_matches('|')
                .split('|')
                .next()
                .unwrap_or("");
            if first.trim_start().starts_with("---") {
                continue;
            }
            for key in first.split('/') {
                let key = key.trim().trim_matches('`');
                if key.is_empty() {
                    continue;
                }
                keys.insert(if section.is_empty() {
                    key.to_string()
                } else {
                    format!("{section}.{key}")
                });
            }
            continue;
        }
        in_table = false;
        if let Some(start) = trimmed.find("Keys of `[") {
            let rest = &trimmed[start + "Keys of `".len()..];
            let name = rest.split('`').next().unwrap_or("");
            section = name.trim_matches(|c| c == '[' || c == ']').to_string();
        } else if trimmed.starts_with("Keys of the configuration") {
            section.clear();
        }
    }
    keys
}
