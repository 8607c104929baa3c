-- identify-bridge profile store, PostgreSQL.

create table profile (
    user_id text not null primary key,
    created_at timestamptz not null,
    created_at_source text not null
        constraint profile_created_at_source_check
        check (created_at_source in ('provider', 'first_seen', 'api')),
    updated_at timestamptz not null,
    last_sign_in_at timestamptz,
    traits jsonb not null default '{}',
    provenance jsonb not null default '{}'
);

create table identity (
    identity_id uuid not null primary key,
    user_id text not null references profile (user_id) on delete cascade,
    provider text not null,
    issuer text not null,
    subject text not null,
    email text,
    email_verified boolean not null default false,
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null,
    constraint identity_issuer_subject_key unique (issuer, subject)
);

create index identity_user_id_idx on identity (user_id);
create index identity_email_idx on identity (lower(email)) where email_verified;

-- No foreign key to profile: the outbox is an event log whose rows may outlive or precede a
-- profile (Identify API relays, replays). Store::delete_user removes a user's rows explicitly.
create table outbox_message (
    message_id uuid not null primary key,
    sink text not null,
    user_id text not null,
    payload jsonb not null,
    status text not null default 'pending'
        constraint outbox_message_status_check
        check (status in ('pending', 'delivered', 'dead')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null,
    lease_until timestamptz,
    lease_owner text,
    last_error text,
    created_at timestamptz not null,
    delivered_at timestamptz
);

create index outbox_message_status_next_attempt_at_idx on outbox_message (status, next_attempt_at);
create index outbox_message_user_id_idx on outbox_message (user_id);

-- Which tower-sessions session belongs to which user, so erasure can remove the sessions.
create table user_session (
    session_id text not null primary key,
    user_id text not null references profile (user_id) on delete cascade,
    created_at timestamptz not null
);

create index user_session_user_id_idx on user_session (user_id);
