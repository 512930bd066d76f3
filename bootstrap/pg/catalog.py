"""Reading the app tables' catalog from Postgres, live and as ``sql/schema.sql`` declares them.

The declared side is observed, not parsed: ``schema.sql`` is run inside a
transaction that is always rolled back, with ``search_path = pg_temp``, so its
tables land in this session's temporary schema and are read with the same
queries as the live ones. That needs no second database and no CREATE
privilege (every role may create temporary tables unless TEMP was revoked), so
it works on prod too, and nothing it creates outlives the transaction.
``schema.sql`` must therefore name its tables without a schema.

Each catalog is read with its own schema as the search path, so that
deparsed defaults, checks and foreign keys print alike on both sides.
Takes open psycopg connections (not in autocommit); never commits.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from ..errors import InputError
from .bookkeeping import META_TABLE
from .diff import APP_SCHEMA, Catalog, Column, Constraint, Index, Table, diff, parse_index
from .plan import SchemaPlan, decide

_COLUMNS = """
select quote_ident(c.relname), quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
from pg_class c
left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where c.relnamespace = %(ns)s and c.relkind in ('r', 'p') and not c.relispartition and c.relname <> all(%(skip)s)
order by c.relname, a.attnum
"""

# NOT NULL is compared as a column property: Postgres 18 also lists it here (contype 'n').
_CONSTRAINTS = """
select quote_ident(c.relname), quote_ident(k.conname), k.contype::text, pg_get_constraintdef(k.oid, true),
       quote_ident(r.relname)
from pg_constraint k
join pg_class c on c.oid = k.conrelid
left join pg_class r on r.oid = k.confrelid
where c.relnamespace = %(ns)s and c.relkind in ('r', 'p') and not c.relispartition and c.relname <> all(%(skip)s)
  and k.contype in ('p', 'u', 'f', 'c', 'x')
order by c.relname, k.conname
"""

_INDEXES = """
select quote_ident(t.relname), quote_ident(i.relname), pg_get_indexdef(x.indexrelid)
from pg_index x
join pg_class i on i.oid = x.indexrelid
join pg_class t on t.oid = x.indrelid
where t.relnamespace = %(ns)s and t.relkind in ('r', 'p') and not t.relispartition and t.relname <> all(%(skip)s)
  and not exists (select 1 from pg_constraint k
                  where k.conindid = x.indexrelid and k.conrelid = x.indrelid and k.contype in ('p', 'u', 'x'))
order by t.relname, i.relname
"""


def read_catalog(conn: Any, namespace: int, skip: Sequence[str] = ()) -> Catalog:
    """The tables of the schema with oid ``namespace`` (except ``skip``); three catalog queries."""
    params = {"ns": namespace, "skip": list(skip)}
    columns: dict[str, list[Column]] = {}
    for table, name, type_, not_null, default, identity, generated in conn.execute(_COLUMNS, params):
        columns.setdefault(table, [])
        if name is not None:
            columns[table].append(Column(name, type_, not_null, default, identity or "", generated or ""))
    constraints: dict[str, list[Constraint]] = {}
    for table, name, kind, definition, references in conn.execute(_CONSTRAINTS, params):
        constraints.setdefault(table, []).append(Constraint(name, kind, definition, references))
    indexes: dict[str, list[Index]] = {}
    for table, name, definition in conn.execute(_INDEXES, params):
        indexes.setdefault(table, []).append(parse_index(name, definition))
    return Catalog(tuple(
        Table(name, tuple(cols), tuple(constraints.get(name, ())), tuple(indexes.get(name, ())))
        for name, cols in columns.items()
    ))


def live_catalog(conn: Any) -> Catalog:
    """The app tables as they are now (everything in ``public`` but this tool's own table)."""
    conn.execute(f"set local search_path = {APP_SCHEMA}")
    namespace = conn.execute("select %s::regnamespace::oid", (APP_SCHEMA,)).fetchone()[0]
    return read_catalog(conn, namespace, [META_TABLE])


def desired_catalog(conn: Any, schema_sql: str, source: str = "sql/schema.sql") -> Catalog:
    """The tables ``schema_sql`` declares: run in this session's temporary schema and rolled back."""
    import psycopg

    try:
        with conn.transaction(force_rollback=True):
            conn.execute("set local search_path = pg_temp")
            conn.execute(schema_sql)
            namespace = conn.execute("select pg_my_temp_schema()::oid").fetchone()[0]
            return read_catalog(conn, namespace)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        # The whole file is one query string, so Postgres's "LINE n" is the file's line.
        line = re.search(r"\bLINE (\d+):", reason)
        where = f"{source}:{line.group(1)}" if line else source
        raise InputError(
            f"{where}: {reason} ({source} is run in a temporary schema to compare it with the live tables: it must "
            "run on its own and name its tables without a schema)"
        ) from None


def probe(conn: Any, plan_changes: Sequence[Any]) -> dict[int, int]:
    """Run each change's probe query: the rows it puts at stake (destructive) or that violate it."""
    counts = {}
    for index, change in enumerate(plan_changes):
        if change.probe is not None:
            counts[index] = conn.execute(change.probe).fetchone()[0]
    return counts


def compare(conn: Any, schema_sql: str) -> tuple[Catalog, Catalog, SchemaPlan]:
    """Live catalog, declared catalog and the plan between them, with every probe run; writes nothing."""
    live = live_catalog(conn)
    desired = desired_catalog(conn, schema_sql)
    changes = diff(live, desired)
    conn.execute(f"set local search_path = {APP_SCHEMA}")
    return live, desired, decide(changes, probe(conn, changes))


def row_counts(conn: Any, tables: Sequence[str]) -> Mapping[str, int]:
    """Rows in each of the live ``tables`` (quoted names, as in a ``Catalog``)."""
    return {table: conn.execute(f"select count(*) from {APP_SCHEMA}.{table}").fetchone()[0] for table in tables}
