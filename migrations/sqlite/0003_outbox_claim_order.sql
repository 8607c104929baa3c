-- Claims take due messages in (next_attempt_at, created_at) order; with created_at in the
-- index a claim reads its batch straight off the index instead of sorting every message
-- due at the same time (a large backlog enqueued at once).
drop index outbox_message_status_next_attempt_at_idx;
create index outbox_message_claim_idx on outbox_message (status, next_attempt_at, created_at);
