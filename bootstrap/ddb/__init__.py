"""The ``cruddur-messages`` DynamoDB table, one module per concern.

- ``table``: the table contract (names, keys, key formats, the GSI, the stream, item shapes) and the
  CreateTable arguments in both directions;
- ``plan``: drift planning (pure): what differs from the spec and which UpdateTable calls repair it;
- ``schema``: creating, repairing, dropping, listing and describing tables on the service;
- ``placement``: where the seeded conversations fall on the timeline and what a seed run wrote (pure);
- ``seed``: writing the seed and pruning what earlier seeds left behind;
- ``writer``: the threaded BatchWriteItem writer with its retry policy;
- ``reads``: scans, the access patterns A and B, and the users they name.

Terminal output of these results lives with the console code (``bootstrap.console.tables``).
This package's ``__init__`` imports nothing: ``bootstrap.config`` and the stream Lambda import
``bootstrap.ddb.table`` alone.
"""
