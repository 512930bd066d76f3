"""The keys of ``bootstrap_meta``, this tool's own bookkeeping table in Postgres.

Every key any step records lives here, so what a rerun reads (``up``'s
planning) and what each step writes cannot drift apart. The table itself is
``sql/meta.sql``; the app never reads it.
"""

from __future__ import annotations

# db.schema-load: the checksum of the sql/schema.sql last applied, and the
# fingerprint of the live app tables when they last matched it.
SCHEMA_CHECKSUM = "db.schema_checksum"
SCHEMA_CATALOG = "db.schema_catalog"
# db.seed: the fingerprints of the seeded users and activities.
USERS_FINGERPRINT = "db.users_fingerprint"
ACTIVITIES_FINGERPRINT = "db.activities_fingerprint"
# ddb.seed: where the seeder placed the conversations in time (the epoch and
# layout of the last finished seed), a seed under way (written before and
# cleared after, so an interrupted seed is pruned on the next run), and the
# fingerprint of what was seeded.
DDB_SEED_EPOCH = "ddb_seed_epoch"
DDB_SEED_LAYOUT = "ddb_seed_layout"
DDB_SEED_PENDING = "ddb_seed_pending"
DDB_SEED_FINGERPRINT = "ddb_seed_fingerprint"
# cognito.seed-users + db.update-cognito-user-ids: the users and pool last synced.
COGNITO_FINGERPRINT = "cognito_fingerprint"
