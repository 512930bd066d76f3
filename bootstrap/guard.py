"""The production guard: destructive work on prod needs an explicit yes; local-only work refuses."""

from __future__ import annotations

from .config import Settings
from .errors import RefusedError


def require_confirmation(settings: Settings, yes: bool, what: str) -> None:
    """Refuse a destructive operation on the prod target unless ``yes``; ``what`` names what would be destroyed."""
    if settings.is_prod and not yes:
        raise RefusedError(f"refusing on the prod target: this would {what}. Re-run with --yes to confirm.")


def require_local(settings: Settings, what: str) -> None:
    """Refuse outright on the prod target: ``what`` only makes sense against local services."""
    if settings.is_prod:
        raise RefusedError(f"{what} is local-only and never runs against the prod target")


def require_prod(settings: Settings, what: str) -> None:
    """Refuse outright on the local target: ``what`` only makes sense on real AWS."""
    if not settings.is_prod:
        raise RefusedError(f"{what} is prod-only and never runs against the local target")
