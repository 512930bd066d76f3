"""The session's stack answers on each engine, and runs the engine asked for (not a silent fallback)."""

import dataclasses

import pytest

pytestmark = pytest.mark.both_engines


def test_stack_answers_with_its_database_and_a_table_it_creates(stack, endpoints, table_name):
    import psycopg

    from bootstrap.ddb.schema import drop_table, schema_load
    from bootstrap.ddb.table import table_spec

    with psycopg.connect(endpoints.postgres_url) as conn:
        assert conn.execute("select current_database()").fetchone() == (endpoints.database_name,)
    spec = dataclasses.replace(table_spec(stack.settings), name=table_name)
    schema_load(endpoints, spec)
    try:
        pages = endpoints.client("dynamodb").get_paginator("list_tables").paginate()
        assert table_name in [name for page in pages for name in page["TableNames"]]
    finally:
        drop_table(endpoints, table_name)


def test_stack_runs_the_engine_asked_for(stack, ddb_engine):
    assert stack.backend.engine == ddb_engine
    served_by = stack.backend.serving("dynamodb")
    assert served_by.name == {"moto": "moto", "dynamodb-local": "dynamodb"}[ddb_engine]
    assert served_by.is_running()
