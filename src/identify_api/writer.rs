//! Group commit: one writer task takes the identify calls that are waiting (up to
//! `write_batch_max`) and records them in one transaction, so concurrent requests share one
//! commit (one fsync on SQLite with `synchronous = FULL`) instead of queueing for one each.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::error::ApiError;
use crate::store::{IdentifyCall, IdentifyOutcome, Store};

/// Requests waiting for the writer before senders wait too (backpressure).
const QUEUE: usize = 1024;

type Reply = Result<Vec<Recorded>, ApiError>;

/// One recorded call: what it answers, handed back so the request needs no copy of it.
pub struct Recorded {
    /// The answer built for this call (`IdentifyCall::response`, JSON text).
    pub response: String,
    pub outcome: IdentifyOutcome,
}

/// What one recorded call answers.
pub enum Answer {
    /// This call's own answer (JSON text).
    Recorded(String),
    /// The first answer for its idempotency key (JSON text).
    Replayed(String),
    /// Its idempotency key was first used with a different request (422).
    KeyReused(ApiError),
}

impl Recorded {
    /// What the caller gets: the first answer for a replay, a refusal for a reused key, else
    /// this call's own.
    pub fn answer(self) -> Answer {
        match self.outcome {
            IdentifyOutcome::Replayed(first) => Answer::Replayed(first),
            IdentifyOutcome::KeyReused => Answer::KeyReused(ApiError::key_reused()),
            IdentifyOutcome::Applied { .. } => Answer::Recorded(self.response),
        }
    }
}

struct Job {
    calls: Vec<IdentifyCall>,
    reply: oneshot::Sender<Reply>,
}

/// The handle requests use; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Start the writer; it ends when every `Writer` is dropped (after the server stops).
    pub fn spawn(store: Store, batch_max: usize) -> (Writer, JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(store, rx, batch_max));
        (Writer { jobs }, task)
    }

    /// Record one request's calls, in order; waits for the shared commit.
    pub async fn record(&self, calls: Vec<IdentifyCall>) -> Reply {
        let (reply, answer) = oneshot::channel();
        let stopped = || ApiError::unavailable("the server is shutting down; retry later");
        self.jobs
            .send(Job { calls, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, batch_max: usize) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut count = jobs[0].calls.len();
        while count < batch_max {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.calls.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut calls = Vec::with_capacity(count);
        let mut sizes = Vec::with_capacity(jobs.len());
        for job in &mut jobs {
            sizes.push(job.calls.len());
            calls.append(&mut job.calls);
        }
        metrics::histogram!("identify_api_commit_calls").record(count as f64);
        let calls = Arc::new(calls);
        let started = std::time::Instant::now();
        let result = store.record_identify_batch(calls.clone()).await;
        metrics::histogram!("identify_api_commit_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(outcomes) => {
                // The store is done with the batch: its answers move out, uncopied.
                let calls = Arc::try_unwrap(calls).unwrap_or_else(|shared| shared.to_vec());
                let mut recorded =
                    calls
                        .into_iter()
                        .zip(outcomes)
                        .map(|(call, outcome)| Recorded {
                            response: call.response,
                            outcome,
                        });
                for (job, n) in jobs.into_iter().zip(sizes) {
                    let _ = job.reply.send(Ok(recorded.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                let error = ApiError::from(e);
                for job in jobs {
                    let _ = job.reply.send(Err(error.clone()));
                }
            }
        }
    }
}
