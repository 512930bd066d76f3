"""The session's stack answers on each engine, and runs the engine asked for (not a silent fallback)."""

import pytest

pytestmark = pytest.mark.both_engines


def test_stack_answers(endpoints, table_name):
    import psycopg
    with psycopg.connect(endpoints.postgres_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert endpoints.client("dynamodb").list_tables()["TableNames"] is not None


def test_stack_runs_the_engine_asked_for(stack, ddb_engine):
    assert stack.backend.engine == ddb_engine
    served_by = stack.backend.serving("dynamodb")
    assert served_by.name == {"moto": "moto", "dynamodb-local": "dynamodb"}[ddb_engine]
    assert served_by.is_running()
