-- Callback states already used, kept until their pending login would have expired: the
-- sign-in transaction inserts the state's hash, so a replayed callback (even one the provider
-- would exchange again) is refused, on any replica.
create table login_state (
    state_hash text not null primary key,
    expires_at timestamptz not null
);

-- Back-channel logout tokens already received (by a hash of provider and `jti`): each is
-- used once.
create table logout_token (
    token_hash text not null primary key,
    expires_at timestamptz not null
);

-- A session's provider, subject and `sid` beside its user: back-channel logout ends sessions by
-- (provider, sid) or (provider, subject).
alter table user_session add column provider text;
alter table user_session add column subject text;
alter table user_session add column sid text;
create index user_session_provider_sid_idx on user_session (provider, sid);
create index user_session_provider_subject_idx on user_session (provider, subject);
