//! The delivery worker: one loop per sink claims due outbox messages (leases, so replicas
//! deliver side by side and a crashed replica's claims come back), sends them, and records
//! the outcome. Retries back off exponentially with full jitter; a message older than the
//! sink's `max_age_secs` goes to dead letter. On stop it claims nothing more, lets in-flight
//! sends finish (bounded) and gives back its leases.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::deliver::{backoff, Outcome, Sender};
use super::{format, IdentifyMessage};
use crate::config::{Settings, SinkSettings};
use crate::store::{OutboxMessage, Store, StoreError};

/// Requests in flight at once per sink (one-message formats).
const MAX_IN_FLIGHT: usize = 16;
/// Pause between polls when nothing was due.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// In-flight sends get this long to finish after a stop.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Pokes idle delivery loops (all sinks, every `Application` in the process).
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Tell idle workers that new messages are due (the sign-in path calls this after its
/// transaction commits), so delivery does not wait for the next poll.
pub fn wake() {
    WAKE.notify_waiters();
}

/// Delivers one sink's messages.
pub struct Worker {
    store: Store,
    sender: Sender,
    owner: String,
}

/// Start one delivery loop per configured sink (the depth gauges are read at scrape time,
/// `GET /metrics`); the handle finishes
/// when all have stopped after `stop`.
pub fn spawn(store: Store, settings: Arc<Settings>, stop: CancellationToken) -> JoinHandle<()> {
    // One owner id per process: a restarted process never inherits a live lease.
    let owner = format!("ib-{}", Uuid::new_v4());
    let tasks: Vec<JoinHandle<()>> = settings
        .sinks
        .iter()
        .map(|sink| {
            let worker = Worker::new(store.clone(), sink.clone(), owner.clone());
            tokio::spawn(worker.run(stop.clone()))
        })
        .collect();
    tokio::spawn(async move {
        for task in tasks {
            let _ = task.await;
        }
    })
}

impl Worker {
    pub fn new(store: Store, sink: SinkSettings, owner: impl Into<String>) -> Worker {
        Worker {
            store,
            sender: Sender::new(sink),
            owner: owner.into(),
        }
    }

    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    fn sink(&self) -> &SinkSettings {
        &self.sender.sink
    }

    /// Deliver until `stop`, then release this worker's leases.
    #[tracing::instrument(skip_all, fields(sink = %self.sink().name))]
    pub async fn run(self, stop: CancellationToken) {
        let mut store_errors = 0u32;
        while !stop.is_cancelled() {
            let batch = self.run_once();
            tokio::pin!(batch);
            let result = tokio::select! {
                r = &mut batch => r,
                _ = stop.cancelled() => match tokio::time::timeout(STOP_GRACE, batch).await {
                    Ok(r) => r,
                    Err(_) => break,
                },
            };
            let pause = match result {
                Ok(n) if n > 0 => {
                    store_errors = 0;
                    continue;
                }
                Ok(_) => IDLE_POLL,
                Err(e) => {
                    store_errors = (store_errors + 1).min(6);
                    tracing::warn!(error = %e, "outbox: store error, pausing delivery");
                    IDLE_POLL * 2u32.pow(store_errors)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = WAKE.notified() => {}
                _ = stop.cancelled() => {}
            }
        }
        match self.store.release_claims(&self.owner).await {
            Ok(n) if n > 0 => tracing::info!(released = n, "outbox: released in-flight claims"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox: could not release claims; they expire"),
        }
    }

    /// Claim one batch of due messages, deliver it and record the outcomes; returns how
    /// many messages were claimed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let per_request = format::messages_per_request(self.sink());
        let limit = if per_request > 1 {
            per_request
        } else {
            self.sink().batch_size
        };
        let claimed = self
            .store
            .claim_due_for_sink(
                &self.owner,
                Some(&self.sink().name),
                limit as i64,
                self.lease(limit),
                Utc::now(),
            )
            .await?;
        let n = claimed.len();
        if n == 0 {
            return Ok(0);
        }
        let (good, bad): (Vec<_>, Vec<_>) = claimed
            .into_iter()
            .map(|row| {
                let parsed = serde_json::from_value::<IdentifyMessage>(row.payload.clone());
                (row, parsed)
            })
            .partition(|(_, p)| p.is_ok());
        for (row, parsed) in bad {
            let reason = format!("unreadable outbox payload: {}", parsed.unwrap_err());
            self.record(&row, Outcome::Dead(reason)).await?;
        }
        let good: Vec<(OutboxMessage, IdentifyMessage)> =
            good.into_iter().map(|(r, p)| (r, p.unwrap())).collect();
        if per_request > 1 {
            for chunk in good.chunks(per_request) {
                let messages: Vec<IdentifyMessage> = chunk.iter().map(|(_, m)| m.clone()).collect();
                let outcome = self.sender.send(&messages).await;
                if outcome == Outcome::Delivered {
                    let ids: Vec<Uuid> = chunk.iter().map(|(r, _)| r.message_id).collect();
                    self.store.mark_delivered_many(&ids, &self.owner).await?;
                    crate::metrics::deliveries(&self.sink().name, "delivered", ids.len() as u64);
                    continue;
                }
                if matches!(outcome, Outcome::Dead(_)) && chunk.len() > 1 {
                    // A sink refuses a whole batch for one bad item: send each message on
                    // its own so that only the ones it refuses become dead letters.
                    tracing::info!(
                        sink = %self.sink().name,
                        messages = chunk.len(),
                        "outbox: sink refused a batch; sending its messages one by one"
                    );
                    self.send_singly(chunk.to_vec()).await?;
                    continue;
                }
                for (row, _) in chunk {
                    self.record(row, outcome.clone()).await?;
                }
            }
        } else {
            self.send_singly(good).await?;
        }
        Ok(n)
    }

    /// Send each message in a request of its own, `MAX_IN_FLIGHT` at a time, and record the
    /// outcomes.
    async fn send_singly(
        &self,
        messages: Vec<(OutboxMessage, IdentifyMessage)>,
    ) -> Result<(), StoreError> {
        let results: Vec<(OutboxMessage, Outcome)> = futures::stream::iter(messages)
            .map(|(row, message)| async move {
                let outcome = self.sender.send(std::slice::from_ref(&message)).await;
                (row, outcome)
            })
            .buffer_unordered(MAX_IN_FLIGHT)
            .collect()
            .await;
        // Deliveries are recorded in one transaction: one commit per batch, not per
        // message, is what lets SQLite keep up with a fast sink.
        let (delivered, other): (Vec<_>, Vec<_>) = results
            .into_iter()
            .partition(|(_, o)| *o == Outcome::Delivered);
        let ids: Vec<Uuid> = delivered.iter().map(|(r, _)| r.message_id).collect();
        self.store.mark_delivered_many(&ids, &self.owner).await?;
        crate::metrics::deliveries(&self.sink().name, "delivered", ids.len() as u64);
        for (row, outcome) in other {
            self.record(&row, outcome).await?;
        }
        Ok(())
    }

    /// Long enough for every request of the batch to time out twice (a 401 refresh) in
    /// turn, and no longer: a crashed replica's claims come back when it runs out. A batch
    /// format counts one round more: a refused batch is sent again one message at a time.
    fn lease(&self, claimed: usize) -> Duration {
        let batch_round = u64::from(format::messages_per_request(self.sink()) > 1);
        let rounds = claimed.div_ceil(MAX_IN_FLIGHT) as u64 + batch_round;
        Duration::from_secs(10.max(rounds * 2 * self.sink().timeout_secs + 5))
    }

    async fn record(&self, row: &OutboxMessage, outcome: Outcome) -> Result<(), StoreError> {
        let sink = &self.sink().name;
        let result = match outcome {
            Outcome::Delivered => {
                crate::metrics::deliveries(sink, "delivered", 1);
                self.store.mark_delivered(row.message_id, &self.owner).await
            }
            Outcome::Dead(reason) => {
                crate::metrics::deliveries(sink, "dead", 1);
                tracing::warn!(message_id = %row.message_id, reason = %reason, "outbox: sink rejected the message; dead letter");
                self.store
                    .mark_dead(row.message_id, &self.owner, &reason)
                    .await
            }
            Outcome::Retry { error, after } => {
                let delay = backoff(self.sink(), row.attempts, after);
                let next = Utc::now() + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX);
                let deadline = row.created_at
                    + TimeDelta::seconds(self.sink().max_age_secs.min(i64::MAX as u64) as i64);
                if next > deadline {
                    crate::metrics::deliveries(sink, "dead", 1);
                    let reason = format!(
                        "gave up after {} attempts (max_age_secs = {}): {error}",
                        row.attempts,
                        self.sink().max_age_secs
                    );
                    tracing::warn!(message_id = %row.message_id, %reason, "outbox: dead letter");
                    self.store
                        .mark_dead(row.message_id, &self.owner, &reason)
                        .await
                } else {
                    crate::metrics::deliveries(sink, "retry", 1);
                    tracing::info!(message_id = %row.message_id, attempts = row.attempts, ?delay, %error, "outbox: will retry");
                    self.store
                        .mark_retry(row.message_id, &self.owner, next, &error)
                        .await
                }
            }
        };
        match result {
            // Our lease expired and another owner took the message (or it was erased):
            // that owner now answers for it.
            Err(StoreError::Conflict(e)) => {
                tracing::warn!(error = %e, "outbox: lease lost");
                Ok(())
            }
            other => other,
        }
    }
}
