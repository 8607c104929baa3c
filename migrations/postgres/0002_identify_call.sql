-- The Identify API's append-only log of accepted calls. `caller` is who sent it (`key:<hash
-- prefix>` or `sub:<token subject>`); idempotency keys (Idempotency-Key header or message_id)
-- are unique per caller, and `response` is what a replay answers.

create table identify_call (
    call_id uuid not null primary key,
    caller text not null,
    idempotency_key text,
    user_id text not null,
    traits jsonb not null,
    context jsonb,
    account_created_at timestamptz,
    response jsonb not null,
    received_at timestamptz not null,
    constraint identify_call_caller_idempotency_key_key unique (caller, idempotency_key)
);

create index identify_call_user_id_idx on identify_call (user_id, received_at);
