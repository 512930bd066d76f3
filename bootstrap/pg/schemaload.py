"""``invoke db.schema-load``: show the plan, apply it, or refuse it; ``--force`` says what it loses first.

The comparison and the applying live in ``schema`` (``schema_report``,
``load_schema``); this module is the conversation around them: print the
differences and their SQL, honour ``--dry-run``, guard prod (``--yes`` to
apply anything, ``--force --yes`` for a rebuild), ask once before a local
rebuild when a person is at the terminal, and reseed what a rebuild emptied.
"""

from __future__ import annotations

import sys

from ..config import Settings, mask_url
from ..console import say
from ..errors import RefusedError
from ..guard import ask_once, require_confirmation
from ..steps import DB_SCHEMA_LOAD, Action, StepResult


def run(settings: Settings, *, force: bool = False, yes: bool = False, dry_run: bool = False) -> list[StepResult]:
    from ..backends import endpoints_for
    from ..fixtures.parse import load_fixtures
    from .database import describe_contents
    from .plan import format_plan
    from .schema import load_schema, schema_refusal, schema_report
    from .seed import seed

    endpoints = endpoints_for(settings)
    if force and not dry_run:
        # Before anything is read: --force on prod is a yes to destroying data, so it needs its own.
        require_confirmation(settings, yes, "drop the values or rebuild the tables that sql/schema.sql cannot "
                                            f"change in place, in {describe_contents(endpoints)}")
    fixtures = load_fixtures(settings.seeds_dir)
    report = schema_report(endpoints, fixtures)
    plan = report.plan
    if dry_run or not plan.unchanged:
        _show(f"db.schema-load against {mask_url(endpoints.postgres_url)}", format_plan(plan))
    if dry_run:
        if plan.refused:
            _show("what --force loses", [report.loss()])
        detail = "the tables match sql/schema.sql" if plan.unchanged else "dry run: nothing was changed"
        return [StepResult(DB_SCHEMA_LOAD, Action.UNCHANGED if plan.unchanged else Action.WOULD_RUN, detail)]
    if not plan.unchanged:
        require_confirmation(settings, yes, "change the tables as shown above")
    if plan.refused:
        if not force:
            raise RefusedError(schema_refusal(plan))
        say(report.loss())
        ask_once(yes, "Rebuild those tables?", "db.schema-load --force cancelled; nothing was changed")
    results = [load_schema(endpoints, force=force)]
    if plan.refused:
        # A rebuild (planned, or forced by values that would not convert) emptied tables; an upsert of
        # what is already there writes nothing.
        results.append(seed(endpoints, fixtures))
    return results


def _show(title: str, lines: list[str]) -> None:
    sys.stdout.write(f"{title}:\n" + "".join(f"{line}\n" for line in lines))
    sys.stdout.flush()

