"""cruddur-bootstrap: one idempotent command that prepares the Cruddur backend's local environment.

One module or package per concern, in layers (README "How the code is laid out"; the import-linter
contract in pyproject.toml): config (settings), state (the .cruddur folder), services (the processes
and containers that serve), readiness (waits), pg (Postgres), ddb (the DynamoDB table), messaging
(access patterns A-E), cognito, fixtures (the YAML seeds), verify, up (the pipeline).
"""
