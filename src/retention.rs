//! The purge worker (`[retention]`): at start and then every `retention.interval_secs`, delete
//! what is past its window (identify calls, delivered messages, dead letters) and what can
//! never be used again (expired database sessions, spent sign-in states and logout tokens,
//! links to sessions older than `session.max_lifetime_secs`).
//!
//! Each kind goes a batch per statement ([`Store::purge_batch`], oldest first), and after each
//! full batch the worker pauses as long as the batch took (at least [`MIN_PAUSE`]): SQLite has
//! one writer, so a sign-in or identify write waiting for the lock always gets it between two
//! batches. One info line per run; `identify_bridge_retention_deleted_total{kind}` counts rows.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{RetentionSettings, SessionStoreKind, Settings};
use crate::store::{Purge, Store, StoreError};

/// The shortest pause between two batches of one kind.
pub const MIN_PAUSE: Duration = Duration::from_millis(50);

/// A session link is kept this long beyond `session.max_lifetime_secs` (clock differences
/// between replicas).
const LINK_MARGIN: Duration = Duration::from_secs(3600);

/// What to purge, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    /// How long each kind is kept (zero: until it expires); a kind not listed is kept forever.
    pub keep: Vec<(Purge, Duration)>,
    /// Rows per statement.
    pub batch_rows: u32,
    /// Time between runs.
    pub interval: Duration,
}

impl Plan {
    /// The plan `[retention]` and `[session]` describe.
    pub fn from_settings(settings: &Settings) -> Plan {
        let retention = &settings.retention;
        let mut keep = Vec::new();
        for (kind, days) in [
            (Purge::IdentifyCalls, retention.identify_calls_days),
            (Purge::DeliveredOutbox, retention.delivered_outbox_days),
            (Purge::DeadLetters, retention.dead_letters_days),
        ] {
            if let Some(window) = RetentionSettings::window(days) {
                keep.push((kind, window));
            }
        }
        keep.push((Purge::LoginStates, Duration::ZERO));
        keep.push((Purge::LogoutTokens, Duration::ZERO));
        // Redis expires its own keys; the database's session table is empty then.
        if settings.session.store == SessionStoreKind::Database {
            keep.push((Purge::ExpiredSessions, Duration::ZERO));
        }
        keep.push((
            Purge::SessionLinks,
            Duration::from_secs(settings.session.max_lifetime_secs) + LINK_MARGIN,
        ));
        Plan {
            keep,
            batch_rows: retention.batch_rows,
            interval: Duration::from_secs(retention.interval_secs),
        }
    }
}

/// Rows deleted by one run, by kind (kinds the plan keeps forever are absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted(pub Vec<(Purge, u64)>);

impl Deleted {
    /// Rows of `kind` deleted (0 if it was not purged).
    pub fn of(&self, kind: Purge) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    fn add(&mut self, kind: Purge, n: u64) {
        match self.0.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, total)) => *total += n,
            None => self.0.push((kind, n)),
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

impl std::fmt::Display for Deleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (kind, n)) in self.0.iter().enumerate() {
            let gap = if i == 0 { "" } else { " " };
            write!(f, "{gap}{}={n}", kind.name())?;
        }
        Ok(())
    }
}

/// Run the plan at start, then every `plan.interval`, until `stop`.
pub fn spawn(store: Store, plan: Plan, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let started = Instant::now();
            match purge_all(&store, &plan, Utc::now(), &stop).await {
                Ok(deleted) => tracing::info!(
                    deleted = deleted.total(),
                    by_kind = %deleted,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "retention: purge done"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "retention: purge failed; trying again next run")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(plan.interval) => {}
            }
        }
    })
}

/// One run of the plan as of `now`; stops early (with what it deleted so far) at `stop`.
pub async fn purge_all(
    store: &Store,
    plan: &Plan,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Deleted, StoreError> {
    let mut deleted = Deleted::default();
    for &(kind, keep) in &plan.keep {
        if stop.is_cancelled() {
            break;
        }
        let keep = TimeDelta::from_std(keep).unwrap_or(TimeDelta::MAX);
        let before = now
            .checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let n = purge(store, kind, before, plan.batch_rows, stop).await?;
        deleted.add(kind, n);
        if kind == Purge::ExpiredSessions && n > 0 {
            // The links of the sessions just deleted.
            let links = store.prune_user_sessions().await?;
            crate::metrics::retention_deleted(Purge::SessionLinks.name(), links);
            deleted.add(Purge::SessionLinks, links);
        }
    }
    Ok(deleted)
}

/// Delete every row of `kind` older than `before`, a batch of `batch_rows` per statement,
/// pausing between batches; returns how many went.
pub async fn purge(
    store: &Store,
    kind: Purge,
    before: DateTime<Utc>,
    batch_rows: u32,
    stop: &CancellationToken,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let started = Instant::now();
        let n = store.purge_batch(kind, before, batch_rows).await?;
        total += n;
        crate::metrics::retention_deleted(kind.name(), n);
        if n < u64::from(batch_rows) {
            return Ok(total);
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(total),
            _ = tokio::time::sleep(started.elapsed().max(MIN_PAUSE)) => {}
        }
    }
}
