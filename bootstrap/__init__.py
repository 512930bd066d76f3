"""cruddur-bootstrap: one idempotent command that prepares the Cruddur backend's local environment.

Modules, one concern each: config (settings), state (the .cruddur folder),
services (embedded/external processes), readiness (waits), postgres, ddb (the DynamoDB table),
messaging (access patterns A-E), cognito, fixtures (YAML seeds), verify.
"""
