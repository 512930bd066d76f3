"""The app database in Postgres: one module per concern.

- ``connection``: connecting, the database-error decorator, the writer lock, which app tables exist.
- ``database``: create/drop, contents and row counts, sessions, psql.
- ``bookkeeping``: ``bootstrap_meta`` (``sql/meta.sql``), where reruns learn what was done (keys: ``bootstrap.meta``).
- ``diff`` and ``plan`` (pure), ``catalog`` and ``schema``: the tables as data, read from Postgres, made to match
  ``sql/schema.sql``; ``schemaload`` is the ``invoke db.schema-load`` conversation around them.
- ``users``: every statement on the ``users`` table. ``seed``: the fixtures' users and activities, planned and written.

Every query is parameterised; identifiers go through ``psycopg.sql`` or come quoted from the server.
Assumes Postgres 13+ (``gen_random_uuid``, ``drop database ... with (force)``). psycopg is imported lazily.
"""
