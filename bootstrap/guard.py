"""The production guard: destructive work on prod needs an explicit yes; local-only work refuses; and the one
question asked at a terminal before destroying local data.

Every refusal of local-only work on the prod target comes from ``require_local``: one error type
(``LocalOnlyError``), one exit code (3, a refusal), one wording.
"""

from __future__ import annotations

import sys

from .config import Settings
from .errors import LocalOnlyError, RefusedError


def require_confirmation(settings: Settings, yes: bool, what: str) -> None:
    """Refuse a destructive operation on the prod target unless ``yes``; ``what`` names what would be destroyed."""
    if settings.is_prod and not yes:
        raise RefusedError(f"refusing on the prod target: this would {what}. Re-run with --yes to confirm.")


def require_local(settings: Settings, what: str, instead: str = "") -> None:
    """Refuse outright on the prod target: ``what`` only makes sense against local services; ``instead`` says
    what to do on prod."""
    if settings.is_prod:
        raise LocalOnlyError(f"{what} is local-only and never runs against the prod target"
                             + (f"; {instead}" if instead else ""))


def require_prod(settings: Settings, what: str) -> None:
    """Refuse outright on the local target: ``what`` only makes sense on real AWS."""
    if not settings.is_prod:
        raise RefusedError(f"{what} is prod-only and never runs against the local target")


def ask_once(yes: bool, question: str, cancelled: str) -> None:
    """Ask ``question`` once, when a person is at the terminal; ``--yes`` and scripts (no terminal) are not asked.

    Anything but y/yes refuses with ``cancelled``, before anything was changed.
    """
    if yes or not sys.stdin.isatty():
        return
    answer = input(f"{question} [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise RefusedError(cancelled)
