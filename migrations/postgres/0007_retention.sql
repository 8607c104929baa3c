-- Retention (`[retention]`): the purge deletes oldest first, a batch at a time, by an indexed
-- time, so each batch reads only the rows it deletes.
--
-- A dead letter's age counts from when it died (`dead_at`), not from its sign-in: it must stay
-- long enough for an operator to see it. Dead letters from before this column take their last
-- attempt's time. The outbox indexes are partial, so a pending message (inserted, claimed,
-- retried) touches neither.
alter table outbox_message add column dead_at timestamptz;
update outbox_message set dead_at = next_attempt_at where status = 'dead';
create index outbox_message_delivered_at_idx on outbox_message (delivered_at) where status = 'delivered';
create index outbox_message_dead_at_idx on outbox_message (dead_at) where status = 'dead';

-- Appended in time order, so the index grows at its right edge; the dashboard's "identify
-- calls received" (newest first) reads it too.
create index identify_call_received_at_idx on identify_call (received_at);

create index login_state_expires_at_idx on login_state (expires_at);
create index logout_token_expires_at_idx on logout_token (expires_at);
-- A session link older than `session.max_lifetime_secs` points at a session that has ended
-- (with Redis or memory sessions nothing else removes it).
create index user_session_created_at_idx on user_session (created_at);
