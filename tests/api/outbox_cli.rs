//! The `identify-bridge outbox …` commands, run as the real binary against a SQLite file.

use std::time::Duration;

use chrono::Utc;
use identify_bridge::store::{OutboxStatus, SignIn, SignInOutcome, Store};
use serde_json::json;

use crate::outbox_faults::{new_message, sink_settings, sqlite_store};

async fn outbox(config: &std::path::Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_identify-bridge"))
        .arg("outbox")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "outbox {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn sign_in(store: &Store, subject: &str) -> SignInOutcome {
    let record = SignIn {
        provider: "google".into(),
        issuer: "https://accounts.google.com".into(),
        subject: subject.into(),
        email: Some(format!("{subject}@example.com")),
        email_verified: true,
        traits: json!({"enrichment_full_name": "Ana Souza"}),
        provenance: json!({}),
        provider_created_at: None,
        at: Utc::now(),
        link_by_email: false,
        avatar: None,
    };
    store
        .record_sign_in(&record, &|_| Vec::new())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_commands_show_retry_and_replay_messages() {
    let (store, dir) = sqlite_store().await;
    let settings = sink_settings("http://127.0.0.1:9/api/identify", json!({"name": "main"}));
    let msgs: Vec<_> = (0..3)
        .map(|i| new_message(&settings, &format!("u{i}")))
        .collect();
    store.enqueue(&msgs).await.unwrap();
    let claimed = store
        .claim_due("cli-test", 1, Duration::from_secs(60), Utc::now())
        .await
        .unwrap();
    let dead_id = claimed[0].message_id;
    store
        .mark_dead(
            dead_id,
            "cli-test",
            "HTTP 400 Bad Request: {\"error\":\"bad\"}",
        )
        .await
        .unwrap();
    let a = sign_in(&store, "alice").await;
    let b = sign_in(&store, "bob").await;
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[[sinks]]\nname = \"main\"\n\
             url = \"http://127.0.0.1:9/api/identify\"\n[[sinks]]\nname = \"other\"\n\
             url = \"http://127.0.0.1:9/other\"\n",
            dir.path().join("outbox.db").display()
        ),
    )
    .unwrap();

    let status = outbox(&config, &["status"]).await;
    let line = status.lines().find(|l| l.starts_with("main")).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[..4], ["main", "2", "0", "1"], "{status}");

    let dead = outbox(&config, &["dead", "--limit", "5"]).await;
    assert!(dead.contains(&dead_id.to_string()), "{dead}");
    assert!(dead.contains("HTTP 400 Bad Request"), "{dead}");

    let retried = outbox(&config, &["retry", &dead_id.to_string()]).await;
    assert!(retried.starts_with("1 "), "{retried}");
    let again = store.get_message(dead_id).await.unwrap().unwrap();
    assert_eq!(again.status, OutboxStatus::Pending);
    assert_eq!(again.attempts, 0);

    let replayed = outbox(
        &config,
        &[
            "replay",
            "--all-users",
            "--sink",
            "main",
            "--rate",
            "1000/s",
        ],
    )
    .await;
    assert!(replayed.starts_with("2 "), "{replayed}");
    for user in [&a, &b] {
        let msgs = store.messages_for_user(&user.user_id).await.unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].sink, "main");
        let p = &msgs[0].payload;
        assert_eq!(
            p["created_at"],
            identify_bridge::traits::format_time(user.created_at)
        );
        assert_eq!(p["traits"]["name"], "Ana Souza");
        assert!(p["traits"]["email"]
            .as_str()
            .unwrap()
            .ends_with("@example.com"));
    }
    store.close().await;
}
