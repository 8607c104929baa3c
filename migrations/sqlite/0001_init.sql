-- identify-bridge profile store, SQLite.
-- Timestamps are UTC text in RFC 3339 with at most millisecond precision, always "+00:00"
-- (what sqlx writes for a chrono DateTime<Utc> truncated to milliseconds), so text order
-- is time order. Uuids are lowercase hyphenated text. Booleans are 0/1.

create table profile (
    user_id text not null primary key,
    created_at text not null,
    created_at_source text not null
        constraint profile_created_at_source_check
        check (created_at_source in ('provider', 'first_seen', 'api')),
    updated_at text not null,
    last_sign_in_at text,
    traits text not null default '{}',
    provenance text not null default '{}'
);

create table identity (
    identity_id text not null primary key,
    user_id text not null references profile (user_id) on delete cascade,
    provider text not null,
    issuer text not null,
    subject text not null,
    email text,
    email_verified integer not null default 0
        constraint identity_email_verified_check check (email_verified in (0, 1)),
    first_seen_at text not null,
    last_seen_at text not null,
    constraint identity_issuer_subject_key unique (issuer, subject)
);

create index identity_user_id_idx on identity (user_id);
create index identity_email_idx on identity (lower(email)) where email_verified = 1;

-- No foreign key to profile: the outbox is an event log whose rows may outlive or precede a
-- profile (Identify API relays, replays). Store::delete_user removes a user's rows explicitly.
create table outbox_message (
    message_id text not null primary key,
    sink text not null,
    user_id text not null,
    payload text not null,
    status text not null default 'pending'
        constraint outbox_message_status_check
        check (status in ('pending', 'delivered', 'dead')),
    attempts integer not null default 0,
    next_attempt_at text not null,
    lease_until text,
    lease_owner text,
    last_error text,
    created_at text not null,
    delivered_at text
);

create index outbox_message_status_next_attempt_at_idx on outbox_message (status, next_attempt_at);
create index outbox_message_user_id_idx on outbox_message (user_id);

-- Which tower-sessions session belongs to which user, so erasure can remove the sessions.
create table user_session (
    session_id text not null primary key,
    user_id text not null references profile (user_id) on delete cascade,
    created_at text not null
);

create index user_session_user_id_idx on user_session (user_id);
