"""Cognito: the local user pool and its seeded users, listing users, and syncing their ids into Postgres.

The app finds a Postgres user by ``cognito_user_id``, which must equal the
Cognito ``sub`` of the user whose ``preferred_username`` is the user's handle
(docs/CONTRACT.md). This module:

- finds or creates the local pool by name and creates one user per fixture
  user (local target only; on prod Cognito is only ever read);
- reads every page of ``list_users`` (at most 60 users a page; pages may be
  short or empty) and tolerates users without ``preferred_username``;
- plans the sync purely (``plan_sync``) and applies it in one UPDATE, in one
  transaction, touching only rows whose id differs.

Stable ids on moto: moto draws pool ids and ``sub`` values from one seedable
random generator (``/moto-api/seed?a=<int>``). Seeding it with a hash of the
pool name before creating the pool, and of pool name + handle before creating
each user, makes both the same after the local endpoint restarts, so the
pool id in the state file and the ids in Postgres stay valid. Afterwards the
generator is reseeded randomly so that nothing else moto creates becomes
predictable. Emulators without that endpoint simply get random ids; the sync
then repairs Postgres.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

from .config import Endpoints, Settings
from .console import progress
from .errors import BootstrapError, ConfigError, RefusedError, ServiceError, aws_errors
from .guard import require_local
from .state import StateDir
from .steps import COGNITO_SEED_USERS as SEED_STEP
from .steps import COGNITO_SYNC as SYNC_STEP
from .steps import Action, StepResult

if TYPE_CHECKING:
    from .fixtures.model import Fixtures, UserFixture

log = logging.getLogger(__name__)

# The largest page Cognito serves for list_users and list_user_pools.
PAGE_SIZE = 60
# Reading or creating more users than this shows progress (done of total, rate, time left).
USERS_PROGRESS_THRESHOLD = 100

T = TypeVar("T")


@dataclass(frozen=True)
class CognitoUser:
    """One Cognito user as far as we care: ``handle`` is its ``preferred_username``, None when it has none."""

    username: str
    sub: str | None
    handle: str | None
    status: str
    enabled: bool = True

    def to_json(self) -> dict[str, object]:
        return {"username": self.username, "handle": self.handle, "sub": self.sub,
                "status": self.status, "enabled": self.enabled}


@dataclass(frozen=True)
class IdUpdate:
    handle: str
    sub: str
    previous: str | None


@dataclass(frozen=True)
class SyncPlan:
    """What the sync will do, and everything that did not match; every tuple is sorted."""

    updates: tuple[IdUpdate, ...] = ()
    in_sync: tuple[str, ...] = ()
    cognito_only: tuple[str, ...] = ()
    postgres_only: tuple[str, ...] = ()
    without_handle: tuple[str, ...] = ()
    ambiguous: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncReport:
    pool_id: str
    plan: SyncPlan
    written: int
    dry_run: bool = False

    def step_result(self) -> StepResult:
        plan = self.plan
        if self.dry_run:
            action = Action.WOULD_RUN if plan.updates else Action.UNCHANGED
        else:
            action = Action.UPDATED if self.written else Action.UNCHANGED
        detail = (
            f"{len(plan.updates)} {'to update' if self.dry_run else 'updated'}, {len(plan.in_sync)} in sync, "
            f"{len(plan.cognito_only)} Cognito users without a Postgres row, "
            f"{len(plan.postgres_only)} Postgres users without a Cognito user"
        )
        if plan.without_handle:
            detail += f", {len(plan.without_handle)} Cognito users without preferred_username"
        if plan.ambiguous:
            detail += f", {len(plan.ambiguous)} handles on several Cognito users (skipped)"
        return StepResult(SYNC_STEP, action, detail, writes=self.written)

    def to_json(self) -> dict[str, object]:
        plan = self.plan
        return {
            "pool_id": self.pool_id,
            "dry_run": self.dry_run,
            "written": self.written,
            "updated": [{"handle": u.handle, "sub": u.sub, "previous": u.previous} for u in plan.updates],
            "in_sync": list(plan.in_sync),
            "cognito_only": list(plan.cognito_only),
            "postgres_only": list(plan.postgres_only),
            "without_preferred_username": list(plan.without_handle),
            "ambiguous": list(plan.ambiguous),
        }


@dataclass(frozen=True)
class SeedPlan:
    create: tuple["UserFixture", ...] = ()
    existing: tuple[str, ...] = ()


# --- pure planning -------------------------------------------------------------------


def paginate(fetch_page: Callable[[str | None], tuple[Sequence[T], str | None]]) -> list[T]:
    """Every item of every page: call ``fetch_page(token)`` until it returns no next token.

    Pages may be short or empty with a token still present; a token seen twice
    would loop forever, so it is an error instead.
    """
    items: list[T] = []
    token: str | None = None
    seen: set[str] = set()
    while True:
        page, token = fetch_page(token)
        items.extend(page)
        if not token:
            return items
        if token in seen:
            raise ServiceError(f"the service returned the pagination token {token[:20]!r} twice")
        seen.add(token)


def cognito_user_from(raw: Mapping[str, Any]) -> CognitoUser:
    """A CognitoUser from one entry of a ``list_users`` response; missing attributes become None."""
    attributes = {a["Name"]: a.get("Value") for a in raw.get("Attributes", ())}
    return CognitoUser(
        username=raw["Username"],
        sub=attributes.get("sub") or None,
        handle=attributes.get("preferred_username") or None,
        status=raw.get("UserStatus", "UNKNOWN"),
        enabled=raw.get("Enabled", True),
    )


def plan_seed(existing: Iterable[CognitoUser], wanted: Iterable["UserFixture"]) -> SeedPlan:
    """Fixture users not yet in the pool; a user exists when its username or preferred_username is the handle."""
    taken: set[str] = set()
    for user in existing:
        taken.add(user.username)
        if user.handle:
            taken.add(user.handle)
    create: list[UserFixture] = []
    present: list[UserFixture] = []
    for fixture in wanted:
        (present if fixture.handle in taken else create).append(fixture)
    return SeedPlan(tuple(create), tuple(sorted(f.handle for f in present)))


def plan_sync(cognito_users: Iterable[CognitoUser], postgres_users: Mapping[str, str | None]) -> SyncPlan:
    """Compare Cognito (handle → sub) with Postgres (handle → cognito_user_id).

    A handle carried by several Cognito users cannot be resolved safely, so it
    is reported and left alone, as are users without ``preferred_username``.
    """
    subs_by_handle: dict[str, list[str | None]] = {}
    without_handle = []
    for user in cognito_users:
        if user.handle is None:
            without_handle.append(user.username)
        else:
            subs_by_handle.setdefault(user.handle, []).append(user.sub)

    updates, in_sync, cognito_only, ambiguous = [], [], [], []
    for handle, subs in sorted(subs_by_handle.items()):
        if len(subs) > 1 or subs[0] is None:
            ambiguous.append(handle)
        elif handle not in postgres_users:
            cognito_only.append(handle)
        elif postgres_users[handle] == subs[0]:
            in_sync.append(handle)
        else:
            updates.append(IdUpdate(handle, subs[0], postgres_users[handle]))
    postgres_only = sorted(set(postgres_users) - set(subs_by_handle))
    return SyncPlan(tuple(updates), tuple(in_sync), tuple(cognito_only), tuple(postgres_only),
                    tuple(sorted(without_handle)), tuple(ambiguous))


def id_seed(*parts: str) -> int:
    """A stable 63-bit seed for moto's random generator from names."""
    digest = hashlib.sha256("\0".join(("cruddur", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# --- Cognito -------------------------------------------------------------------------


def _aws_errors(what: str) -> contextlib.AbstractContextManager[None]:
    return aws_errors(what, not_found_hint="check AWS_COGNITO_USER_POOL_ID")


def find_pool_id(endpoints: Endpoints, name: str) -> str | None:
    """The id of the pool named ``name``, looking through every page of pools; None when there is none."""
    client = endpoints.client("cognito-idp")

    def fetch(token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {"MaxResults": PAGE_SIZE}
        if token:
            kwargs["NextToken"] = token
        response = client.list_user_pools(**kwargs)
        return response.get("UserPools", []), response.get("NextToken")

    with _aws_errors("listing Cognito user pools"):
        matches = sorted(pool["Id"] for pool in paginate(fetch) if pool.get("Name") == name)
    if len(matches) > 1:
        log.warning("%d user pools are named %s; using %s", len(matches), name, matches[0])
    return matches[0] if matches else None


def list_users(endpoints: Endpoints, pool_id: str) -> list[CognitoUser]:
    """Every user of the pool, across all pages (with progress for a large pool)."""
    client = endpoints.client("cognito-idp")

    with _aws_errors(f"listing the users of pool {pool_id}"):
        total = _estimated_users(client, pool_id)
        with progress(total, f"reading the users of pool {pool_id}", USERS_PROGRESS_THRESHOLD) as advance:

            def fetch(token: str | None) -> tuple[list[CognitoUser], str | None]:
                kwargs: dict[str, Any] = {"UserPoolId": pool_id, "Limit": PAGE_SIZE}
                if token:
                    kwargs["PaginationToken"] = token
                response = client.list_users(**kwargs)
                users = [cognito_user_from(raw) for raw in response.get("Users", [])]
                advance(len(users))
                return users, response.get("PaginationToken")

            return paginate(fetch)


def _estimated_users(client: Any, pool_id: str) -> int | None:
    """The pool's approximate size, for progress; None when unreadable (a prod role may not allow DescribeUserPool)."""
    from botocore.exceptions import ClientError

    try:
        return client.describe_user_pool(UserPoolId=pool_id)["UserPool"].get("EstimatedNumberOfUsers")
    except ClientError:
        return None


def resolve_pool_id(endpoints: Endpoints, settings: Settings) -> str:
    """Prod: AWS_COGNITO_USER_POOL_ID. Local: the pool named by the settings, which must exist."""
    if settings.is_prod:
        pool_id = settings.user_pool_id or endpoints.user_pool_id
        if not pool_id:
            raise ConfigError("the prod target needs AWS_COGNITO_USER_POOL_ID (the user pool to read)")
        return pool_id
    pool_id = find_pool_id(endpoints, settings.user_pool_name)
    if pool_id is None:
        raise BootstrapError(
            f"no local user pool named {settings.user_pool_name!r}; create it with `invoke cognito.seed-users`"
        )
    return pool_id


class MotoIds:
    """Seeds moto's random generator so that the next id it draws depends only on our key."""

    def __init__(self, endpoints: Endpoints) -> None:
        self._url = f"{endpoints.endpoint_for('cognito-idp')}/moto-api/seed" if endpoints.is_local_aws else None
        self.used = False

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """This machine's turn at the endpoint's one generator, from a seed to the create that draws from it.

        moto has a single generator for every pool: two of our processes loading pools into one server at
        once (pytest-xdist workers) would otherwise each take the other's seed. A lock file per endpoint in
        the temp folder serialises them; flock needs only read access, so a file another user created
        serves too, and where none can be opened we go on without it (callers check what moto drew).
        """
        import fcntl
        import os
        import tempfile
        import zlib

        if self._url is None:
            yield
            return
        path = os.path.join(tempfile.gettempdir(), f"cruddur-moto-ids-{zlib.crc32(self._url.encode()):08x}.lock")
        try:
            handle = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:
            yield
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            os.close(handle)  # closing releases the lock

    def seed(self, value: int | str) -> None:
        """Seed the endpoint's generator (``value`` an int, or one in decimal digits: ``str()`` refuses very long
        ones); an endpoint that can't be seeded is not asked again."""
        import urllib.error
        import urllib.request

        if self._url is None:
            return
        request = urllib.request.Request(f"{self._url}?a={value}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    self.used = True
                    return
        except (urllib.error.URLError, OSError) as exc:
            log.debug("endpoint does not take a random seed (%s); ids will be random", exc)
        self._url = None


@contextlib.contextmanager
def stable_ids(endpoints: Endpoints) -> Iterator[MotoIds]:
    ids = MotoIds(endpoints)
    try:
        yield ids
    finally:
        if ids.used:
            ids.seed(secrets.randbits(63))


def ensure_user_pool(endpoints: Endpoints, name: str, ids: MotoIds, fresh: bool = False) -> tuple[str, bool]:
    """The pool's id and whether it was created now; ``fresh`` deletes the pool (and all its users) first."""
    pool_id = find_pool_id(endpoints, name)
    if pool_id is not None and fresh:
        with _aws_errors(f"deleting user pool {name}"):
            endpoints.client("cognito-idp").delete_user_pool(UserPoolId=pool_id)
        log.info("deleted user pool %s (%s)", name, pool_id)
        pool_id = None
    if pool_id is not None:
        return pool_id, False
    ids.seed(id_seed(name))
    with _aws_errors(f"creating user pool {name}"):
        pool = endpoints.client("cognito-idp").create_user_pool(PoolName=name)["UserPool"]
    log.info("created user pool %s (%s)", name, pool["Id"])
    return pool["Id"], True


def _create_user(endpoints: Endpoints, pool_id: str, user: "UserFixture") -> None:
    endpoints.client("cognito-idp").admin_create_user(
        UserPoolId=pool_id,
        Username=user.handle,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "preferred_username", "Value": user.handle},
            {"Name": "email", "Value": user.email},
            {"Name": "name", "Value": user.display_name},
        ],
    )


def seed_users(
    endpoints: Endpoints,
    settings: Settings,
    fixtures: "Fixtures | None" = None,
    state: StateDir | None = None,
    fresh: bool = False,
) -> StepResult:
    """Find or create the local pool, create the fixture users it lacks, and remember the pool id.

    Local only. ``fixtures`` defaults to ``settings.seeds_dir``; ``state`` to ``settings.state_dir``.
    ``fresh`` (``up --fresh``) deletes the pool with every user first; on moto the new pool and users
    get the same ids again (see the module docstring).
    """
    from .fixtures.parse import load_fixtures

    require_local(settings, SEED_STEP)
    if not endpoints.is_local_aws:
        raise RefusedError(f"{SEED_STEP} writes to Cognito and runs only against a local AWS endpoint")
    fixtures = fixtures if fixtures is not None else load_fixtures(settings.seeds_dir)
    state = state if state is not None else StateDir(settings.state_dir)
    name = settings.user_pool_name

    with stable_ids(endpoints) as ids:
        pool_id, pool_created = ensure_user_pool(endpoints, name, ids, fresh=fresh)
        plan = plan_seed([] if pool_created else list_users(endpoints, pool_id), fixtures.users)
        with _aws_errors(f"creating users in pool {pool_id}"), \
                progress(len(plan.create), f"creating users in pool {name}", USERS_PROGRESS_THRESHOLD) as advance:
            for user in plan.create:
                ids.seed(id_seed(name, user.handle))
                _create_user(endpoints, pool_id, user)
                advance(1)

    if state.get("user_pool_id") != pool_id:
        state.update("user_pool_id", value=pool_id)
    writes = int(pool_created) + len(plan.create)
    if pool_created:
        action = Action.CREATED
    else:
        action = Action.UPDATED if plan.create else Action.UNCHANGED
    detail = f"pool {name} ({pool_id}): {len(plan.create)} users created, {len(plan.existing)} already there"
    if fresh:
        detail += " (--fresh: the pool was deleted with all its users and created again)"
    return StepResult(SEED_STEP, action, detail, writes=writes)


# --- Postgres ------------------------------------------------------------------------

@contextlib.contextmanager
def _postgres_errors(endpoints: Endpoints) -> Iterator[None]:
    import psycopg

    from .config import mask_url

    try:
        yield
    except psycopg.errors.UndefinedTable:
        raise BootstrapError(
            f"{endpoints.database_name} has no table public.users; load the schema first (`invoke db.schema-load`)"
        ) from None
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceError(f"cannot reach Postgres at {mask_url(endpoints.postgres_url)}: {first_line}") from None


def sync_report(endpoints: Endpoints, pool_id: str, dry_run: bool = False,
                fixtures: "Fixtures | None" = None) -> SyncReport:
    """Read every Cognito user, then set ``users.cognito_user_id`` by handle in one statement and transaction.

    ``fixtures`` (local only): also record, in that transaction, that the fixture users are seeded and synced
    in this pool, so that the next ``up`` finds it done whether ``up`` or this task did it.
    """
    from .fixtures.model import cognito_fingerprint
    from .meta import COGNITO_FINGERPRINT
    from .pg import bookkeeping, users
    from .pg.connection import connect

    cognito_users = list_users(endpoints, pool_id)
    with _postgres_errors(endpoints), connect(endpoints.postgres_url) as conn:
        plan = plan_sync(cognito_users, users.cognito_user_ids(conn))
        written = 0
        if not dry_run:
            written = users.set_cognito_user_ids(conn, [(u.handle, u.sub) for u in plan.updates])
            if fixtures is not None:
                bookkeeping.write(conn, {COGNITO_FINGERPRINT: cognito_fingerprint(fixtures.users_fingerprint, pool_id)})
    log.debug("sync of pool %s: %s", pool_id, plan)
    return SyncReport(pool_id, plan, written, dry_run)


def sync_user_ids(endpoints: Endpoints, pool_id: str, fixtures: "Fixtures | None" = None) -> StepResult:
    """The sync as one step of ``invoke up``."""
    return sync_report(endpoints, pool_id, fixtures=fixtures).step_result()


# --- output --------------------------------------------------------------------------


def user_rows(users: Iterable[CognitoUser]) -> list[list[str]]:
    """Table rows handle → sub → status → note, by handle; users without preferred_username last, marked."""
    rows = []
    for user in sorted(users, key=lambda u: (u.handle is None, u.handle or u.username)):
        notes = [] if user.handle else [f"no preferred_username (username {user.username})"]
        if not user.enabled:
            notes.append("disabled")
        rows.append([user.handle or "-", user.sub or "-", user.status, "; ".join(notes)])
    return rows


def sync_rows(report: SyncReport) -> list[list[str]]:
    """One row per user the sync did not find in sync: handle, outcome, detail. In-sync users are only counted."""
    plan = report.plan
    changed = "would update" if report.dry_run else "updated"
    rows = [[u.handle, changed, f"{u.previous or '(null)'} → {u.sub}"] for u in plan.updates]
    rows += [[handle, "no Postgres row", "Cognito user only"] for handle in plan.cognito_only]
    rows += [[handle, "no Cognito user", "Postgres row kept as is"] for handle in plan.postgres_only]
    rows += [["-", "no preferred_username", f"Cognito username {name}"] for name in plan.without_handle]
    rows += [[handle, "ambiguous", "several Cognito users carry this handle; skipped"] for handle in plan.ambiguous]
    return rows


def print_sync_report(report: SyncReport) -> None:
    from .console import print_table

    rows = sync_rows(report)
    if rows:
        print_table(["handle", "outcome", "detail"], rows,
                    title=f"pool {report.pool_id}: {len(report.plan.in_sync)} users already in sync", wrap={"detail"})
