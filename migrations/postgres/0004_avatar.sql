-- Profile photos the bridge re-hosts (Microsoft Graph's photo needs a token to read, so the
-- bridge keeps the bytes and serves them at /avatars/{avatar_id}). The id is derived from the
-- identity and the bytes, so it is unguessable and changes when the photo does.
create table avatar (
    avatar_id text not null primary key,
    user_id text not null references profile (user_id) on delete cascade,
    content_type text not null,
    image bytea not null,
    updated_at timestamptz not null
);
create index avatar_user_id_idx on avatar (user_id);
