//! A fresh PostgreSQL database per test (`ib_test_<uuid>`), dropped afterwards.
//! `DATABASE_URL_PG`, else `postgres://postgres@127.0.0.1:5432/test`, else user `root`.
//! PostgreSQL must be reachable: these tests fail rather than skip without it.

use sqlx::postgres::PgPool;
use sqlx::Executor;

pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

async fn admin() -> (PgPool, String) {
    let candidates: Vec<String> = match std::env::var("DATABASE_URL_PG") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/test".into(),
            "postgres://root@127.0.0.1:5432/test".into(),
        ],
    };
    let mut errors = Vec::new();
    for url in candidates {
        match PgPool::connect(&url).await {
            Ok(pool) => return (pool, url),
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    panic!(
        "PostgreSQL is not reachable ({}); start it or set DATABASE_URL_PG",
        errors.join("; ")
    );
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let (pool, admin_url) = admin().await;
        let name = format!("ib_test_{}", uuid::Uuid::new_v4().simple());
        pool.execute(format!("create database {name}").as_str())
            .await
            .unwrap();
        pool.close().await;
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        TestDatabase {
            url: url.to_string(),
            name,
            admin_url,
        }
    }

    /// Make the database refuse connections and drop the open ones (the database "goes down").
    pub async fn take_down(&self) {
        let pool = PgPool::connect(&self.admin_url).await.unwrap();
        pool.execute(format!("alter database {} allow_connections false", self.name).as_str())
            .await
            .unwrap();
        pool.execute(
            format!(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{}'",
                self.name
            )
            .as_str(),
        )
        .await
        .unwrap();
        pool.close().await;
    }

    pub async fn bring_up(&self) {
        let pool = PgPool::connect(&self.admin_url).await.unwrap();
        pool.execute(format!("alter database {} allow_connections true", self.name).as_str())
            .await
            .unwrap();
        pool.close().await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // A separate thread with its own runtime: Drop may run inside a finished test runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = PgPool::connect(&admin_url).await {
                    let _ = pool
                        .execute(format!("drop database if exists {name} with (force)").as_str())
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}
