-- This tool's own bookkeeping: what reruns need to know was already done
-- (the checksum of the applied schema, the fingerprints of seeded fixtures,
-- the DynamoDB seeder's epoch). Not part of the app's contract; the app never
-- reads it. Idempotent.

create table if not exists public.bootstrap_meta (
  key text primary key,
  value text not null,
  updated_at timestamptz not null default now()
);
