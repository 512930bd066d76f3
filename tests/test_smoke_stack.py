def test_stack_answers(endpoints, table_name):
    import psycopg
    with psycopg.connect(endpoints.postgres_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert "TableNames" in endpoints.client("dynamodb").list_tables()
