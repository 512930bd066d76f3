-- The Cruddur app's tables, exactly as docs/CONTRACT.md describes them,
-- plus indexes and a foreign key that keep the contract's shapes.
-- This file declares the tables; `invoke db.schema-load` makes the live ones
-- match it in place (new tables, columns, defaults, indexes, constraints) and
-- refuses what would drop or rewrite data. Names carry no schema: the tool
-- runs this file in a temporary schema to compare it with the live tables in
-- public (search_path = public, as for the app).
-- gen_random_uuid() is built into Postgres 13+, so no extension is needed.

create table if not exists users (
  uuid uuid primary key default gen_random_uuid(),
  display_name text,
  email text,
  handle text,
  cognito_user_id text,
  created_at timestamp not null default current_timestamp
);

-- The app looks users up by handle and by cognito_user_id.
create unique index if not exists users_handle_key on users (handle);
create index if not exists users_cognito_user_id_idx on users (cognito_user_id);

create table if not exists activities (
  uuid uuid primary key default gen_random_uuid(),
  user_uuid uuid not null references users (uuid) on delete cascade,
  message text not null,
  replies_count integer default 0,
  reposts_count integer default 0,
  likes_count integer default 0,
  reply_to_activity_uuid integer,
  expires_at timestamp,
  created_at timestamp not null default current_timestamp
);

create index if not exists activities_user_uuid_idx on activities (user_uuid);
