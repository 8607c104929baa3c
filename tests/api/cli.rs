//! The `identify-bridge` command as an operator meets it, run as the built binary: commands that
//! read data never create a database, every argument explains itself, shell completions work,
//! and `serve` logs each failure once at its level.

use std::path::Path;
use std::process::Stdio;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};

const BINARY: &str = env!("CARGO_BIN_EXE_identify-bridge");

/// Run the binary in `dir` with no configuration from this environment.
fn command(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(BINARY);
    command.current_dir(dir).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("IDENTIFY_BRIDGE") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    command(dir, args).output().unwrap()
}

#[test]
fn commands_that_read_data_stop_at_a_missing_database_and_name_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().join("data").join("identify-bridge.db");
    let absolute = std::fs::canonicalize(dir.path())
        .unwrap()
        .join("data")
        .join("identify-bridge.db");
    for args in [
        &["outbox", "status"][..],
        &["outbox", "dead"],
        &["outbox", "retry", "--all"],
        &["outbox", "replay", "--all-users"],
        &["users", "get", "someone"],
        &["users", "delete", "someone"],
    ] {
        let out = run(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
        assert!(
            stderr.contains(&absolute.display().to_string())
                || stderr.contains(&expected.display().to_string()),
            "{args:?} does not name {}: {stderr}",
            absolute.display()
        );
        assert!(stderr.contains("no database at"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a table anyway");
        assert!(
            !dir.path().join("data").exists(),
            "{args:?} created the data directory"
        );
    }
}

#[test]
fn migrate_creates_the_database_that_the_other_commands_then_use() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = run(dir.path(), &["migrate"]);
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(dir.path().join("data/identify-bridge.db").is_file());
    let status = run(dir.path(), &["outbox", "status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// Every subcommand path, found by reading `-h` from the root down.
fn subcommands(dir: &Path, path: Vec<String>, found: &mut Vec<Vec<String>>) {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("-h");
    let out = run(dir, &args);
    assert!(out.status.success(), "{args:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    found.push(path.clone());
    for name in section(&help, "Commands:") {
        let name = name.split_whitespace().next().unwrap().to_string();
        if name != "help" {
            let mut child = path.clone();
            child.push(name);
            subcommands(dir, child, found);
        }
    }
}

/// The entry lines of a help section (`Arguments:`, `Options:`, `Commands:`).
fn section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|line| *line != title)
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .map(str::trim)
        .collect()
}

#[test]
fn every_argument_of_every_command_has_help_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    subcommands(dir.path(), Vec::new(), &mut paths);
    for expected in [
        vec!["users", "get"],
        vec!["outbox", "retry"],
        vec!["completions"],
    ] {
        assert!(
            paths.iter().any(|p| *p == expected),
            "{expected:?} not found"
        );
    }
    let mut bare = Vec::new();
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("-h");
        let help = String::from_utf8(run(dir.path(), &args).stdout).unwrap();
        for title in ["Arguments:", "Options:", "Commands:"] {
            for entry in section(&help, title) {
                // `-c, --config <CONFIG>  TOML configuration…`: the description follows two spaces.
                if !entry.contains("  ") {
                    bare.push(format!("{} {entry}", path.join(" ")));
                }
            }
        }
    }
    assert!(bare.is_empty(), "arguments without help text: {bare:#?}");
}

#[test]
fn bash_completion_completes_subcommands_and_the_other_shells_get_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let bash = run(dir.path(), &["completions", "bash"]);
    assert!(bash.status.success());
    let script = dir.path().join("identify-bridge.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    // Load the script into a real bash and ask it what `identify-bridge ou<TAB>` and
    // `identify-bridge outbox <TAB>` complete to.
    // The function is whatever `complete -p` says the script registered.
    let probe = format!(
        "source {script}\n\
         fn=$(complete -p identify-bridge | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
         COMP_WORDS=(identify-bridge ou); COMP_CWORD=1; $fn identify-bridge ou identify-bridge\n\
         echo \"top: ${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(identify-bridge outbox ''); COMP_CWORD=2; $fn identify-bridge '' outbox\n\
         echo \"outbox: ${{COMPREPLY[*]}}\"\n",
        script = script.display()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(probe)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("top: outbox"), "{text}");
    let outbox_line = text.lines().find(|l| l.starts_with("outbox:")).unwrap();
    for word in ["status", "dead", "retry", "replay"] {
        assert!(outbox_line.contains(word), "{text}");
    }

    for (shell, marker) in [
        ("zsh", "#compdef identify-bridge"),
        ("fish", "complete -c identify-bridge"),
    ] {
        let out = run(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("outbox"), "{shell}");
    }
    let unknown = run(dir.path(), &["completions", "powershell-9"]);
    assert!(!unknown.status.success());
}

/// `serve` as a child process, its JSON log lines collected.
struct Served {
    child: tokio::process::Child,
    url: String,
    lines: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Served {
    async fn start(dir: &Path, config: &str) -> Served {
        let path = dir.join("bridge.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = tokio::process::Command::from(command(
            dir,
            &["serve", "--config", path.to_str().unwrap()],
        ))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, mut lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
                if send.send(value).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let address = loop {
            let line: serde_json::Value =
                tokio::time::timeout(std::time::Duration::from_secs(30), lines.recv())
                    .await
                    .expect("serve logs that it listens")
                    .expect("serve exited");
            if line["message"] == "identify-bridge listening" {
                break line["address"].as_str().unwrap().to_string();
            }
            seen.push(line);
        };
        Served {
            child,
            url: format!("http://{address}"),
            lines,
            seen,
        }
    }

    /// The log lines so far, after a request whose response has been read: a final request
    /// to a marker path flushes the ones before it (lines arrive in order).
    async fn lines_until_marker(&mut self, client: &reqwest::Client) -> Vec<serde_json::Value> {
        let marker = format!("/marker-{}", uuid::Uuid::new_v4());
        let response = client
            .get(format!("{}{marker}", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(10), self.lines.recv())
                .await
                .expect("the marker request is logged")
                .expect("serve exited");
            if line["path"] == marker.as_str() {
                return std::mem::take(&mut self.seen);
            }
            self.seen.push(line);
        }
    }
}

/// The lines a request to `path` wrote (its span or its fields name the path).
fn lines_for<'a>(lines: &'a [serde_json::Value], path: &str) -> Vec<&'a serde_json::Value> {
    lines
        .iter()
        .filter(|l| l["path"] == path || l["span"]["path"] == path)
        .collect()
}

#[tokio::test]
async fn serve_logs_each_failure_once_at_its_level_and_never_the_favicon() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: the provider is never ready.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut served = Served::start(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\n\
             [session]\nstore = \"memory\"\n\
             [rate_limit]\nlogin_per_minute = 1\nlogin_burst = 1\n\
             [[providers]]\nname = \"corp\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{dead_port}\"\n\
             client_id = \"a\"\nclient_secret = \"b\"\n"
        ),
    )
    .await;
    let client = crate::harness::client_builder(false).build().unwrap();
    let get = |path: &str| client.get(format!("{}{path}", served.url)).send();

    let favicon = get("/favicon.ico").await.unwrap();
    assert_eq!(favicon.status(), StatusCode::OK);
    assert_eq!(favicon.headers()["content-type"], "image/svg+xml");
    assert_eq!(
        get("/readyz").await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The provider is not ready: a 503 page.
    assert_eq!(
        get("/login/corp").await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The burst of one is spent: a 429.
    assert_eq!(
        get("/login/corp").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let lines = served.lines_until_marker(&client).await;
    let above_debug = |path: &str| -> Vec<&serde_json::Value> {
        lines_for(&lines, path)
            .into_iter()
            .filter(|l| l["level"] != "DEBUG" && l["level"] != "TRACE")
            .collect()
    };

    assert!(above_debug("/favicon.ico").is_empty(), "{lines:#?}");
    // The readiness line is logged by the handler (in whichever span is innermost there).
    let ready: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "not ready" || above_debug("/readyz").contains(l))
        .collect();
    assert_eq!(ready.len(), 1, "{ready:#?}");
    assert_eq!(ready[0]["level"], "WARN", "{ready:#?}");
    assert!(
        ready[0]["failing"]
            .as_str()
            .unwrap()
            .contains("provider:corp"),
        "{ready:#?}"
    );
    let login = above_debug("/login/corp");
    assert_eq!(login.len(), 2, "one line per failed request: {login:#?}");
    let unavailable: Vec<_> = login.iter().filter(|l| l["status"] == 503).collect();
    assert_eq!(unavailable.len(), 1, "{login:#?}");
    assert_eq!(unavailable[0]["level"], "ERROR");
    let limited: Vec<_> = login.iter().filter(|l| l["status"] == 429).collect();
    assert_eq!(limited.len(), 1, "{login:#?}");
    assert_eq!(limited[0]["level"], "WARN");
    assert_eq!(limited[0]["reason"], "rate_limited");
    served.child.kill().await.unwrap();
}
