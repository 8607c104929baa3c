-- What an idempotency key was first used with: the SHA-256 (hex) of the call's user_id, traits,
-- context and timestamp, so a reuse with a different request is refused (422) instead of
-- replayed. Rows logged before this column have none and replay as before.

alter table identify_call add column request_digest text;
