"""Settings: every option declared once, resolved once, at task entry.

Each option carries its default, the environment variables that may set it and
its help text. ``resolve_settings`` layers them in this order, later wins:

    built-in default < invoke.yaml (``cruddur:`` section) < environment < task flag

and remembers where each value came from, so that ``invoke env --explain`` and
error messages can say why a value is what it is. Nothing here reads
``os.environ`` at import time, and nothing here imports a heavy library, so
``invoke --list`` stays fast.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

from .ddb.table import DEFAULT_TABLE_NAME
from .errors import ConfigError, Failure, describe

PROJECT_ROOT = Path(__file__).resolve().parent.parent

TARGETS = ("local", "prod")
BACKENDS = ("auto", "embedded", "docker", "external")
BILLING_MODES = ("PROVISIONED", "PAY_PER_REQUEST")
DDB_ENGINES = ("auto", "moto", "dynamodb-local")

# Dummy credentials for local endpoints only: a fixed pair keeps boto3 from
# searching (and possibly finding real) credentials. Letters and digits only:
# DynamoDB Local 2.0 and later rejects any other access key id (moto takes
# anything), and the same pair for everyone, as the contract asks.
LOCAL_AWS_ACCESS_KEY_ID = "cruddurlocal"
LOCAL_AWS_SECRET_ACCESS_KEY = "cruddurlocalsecret"
_LOCAL_KEY_ID = re.compile(r"^[A-Za-z0-9]+$")
# The local services' region unless the setting region or the app's AWS_DEFAULT_REGION says otherwise (the contract).
LOCAL_REGION = "us-east-1"


def local_key_id_problem(key_id: str | None) -> str | None:
    """Why DynamoDB Local would refuse this access key id (None when it would not, or none is set)."""
    if not key_id or _LOCAL_KEY_ID.match(key_id):
        return None
    return (f"AWS_ACCESS_KEY_ID {key_id[:4]}… has characters other than letters and digits, which DynamoDB Local "
            "(2.0 and later) rejects with UnrecognizedClientException: `eval \"$(invoke env)\"` sets local keys it accepts")


@dataclass(frozen=True)
class Option:
    """One setting: its default, the environment variables that set it, its help."""

    name: str
    default: Any
    help: str
    env: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    parse: Callable[[str], Any] = str


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10000:
        raise ValueError("must be a number of records from 1 to 10000 (the DynamoDB Streams trigger's limit)")
    return value


def _switch(text: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be 1/true/yes/on or 0/false/no/off")


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


OPTIONS: tuple[Option, ...] = (
    Option("target", "local", "where to act: local services, or prod (real AWS and RDS)",
           ("CRUDDUR_TARGET",), TARGETS),
    Option("backend", "auto", "how local services run: auto, embedded, docker or external",
           ("CRUDDUR_BACKEND",), BACKENDS),
    Option("region", LOCAL_REGION, "AWS region; when not set here: locally AWS_DEFAULT_REGION (as the app reads it) "
           "else us-east-1, on prod boto3's chain (AWS_REGION, AWS_DEFAULT_REGION, the profile's region)",
           ("CRUDDUR_REGION",)),
    Option("table_name", DEFAULT_TABLE_NAME, "DynamoDB table name", ("CRUDDUR_TABLE_NAME",)),
    Option("billing_mode", "PROVISIONED", "DynamoDB billing mode of the table",
           ("CRUDDUR_BILLING_MODE",), BILLING_MODES),
    Option("pg_port", 5432, "Postgres port (a free one is chosen if taken)", ("CRUDDUR_PG_PORT",),
           parse=_port),
    Option("pg_user", "postgres", "Postgres user", ("CRUDDUR_PG_USER",)),
    Option("pg_password", "password", "Postgres password", ("CRUDDUR_PG_PASSWORD",)),
    Option("pg_database", "cruddur", "Postgres database of the app", ("CRUDDUR_PG_DATABASE",)),
    Option("ddb_port", 8000, "DynamoDB/Cognito endpoint port (a free one is chosen if taken)",
           ("CRUDDUR_DDB_PORT",), parse=_port),
    Option("ddb_engine", "auto", "what serves DynamoDB in the embedded backend: moto, dynamodb-local (AWS's "
           "DynamoDB Local, Java 17+), or auto (DynamoDB Local when Java and its files are found, else moto)",
           ("CRUDDUR_DDB_ENGINE",), DDB_ENGINES),
    Option("dynamodb_local_path", None, "folder holding DynamoDBLocal.jar (else: the cache, ./node_modules, "
           "`dynamodb-local` on PATH, the global node_modules)", ("CRUDDUR_DYNAMODB_LOCAL_PATH",)),
    Option("cognito_port", 5000, "Cognito endpoint port when DynamoDB Local serves DynamoDB (a free one is chosen "
           "if taken)", ("CRUDDUR_COGNITO_PORT",), parse=_port),
    Option("ephemeral", False, "embedded backend: keep nothing across `invoke down` for speed (DynamoDB Local in "
           "memory, Postgres without fsync, synchronous commits or full-page writes); for CI and throwaway workspaces",
           ("CRUDDUR_EPHEMERAL",), parse=_switch),
    Option("ready_timeout", 60.0, "seconds to wait for each service to become ready",
           ("CRUDDUR_READY_TIMEOUT",), parse=_positive_float),
    Option("state_dir", str(PROJECT_ROOT / ".cruddur"), "folder for runtime state",
           ("CRUDDUR_STATE_DIR",)),
    Option("seeds_dir", str(PROJECT_ROOT / "seeds"), "folder of the YAML fixtures",
           ("CRUDDUR_SEEDS_DIR",)),
    Option("compose_files", str(PROJECT_ROOT / "docker-compose.yml"),
           "compose files of the docker backend, ':'-separated, merged in order like `docker compose -f a -f b`",
           ("CRUDDUR_COMPOSE_FILES",)),
    Option("cache_dir", "~/.cache/cruddur-bootstrap",
           "folder for reusable work (an initialised Postgres template, Java's version)",
           ("CRUDDUR_CACHE_DIR",)),
    Option("system_dir", "/var/lib/cruddur-bootstrap", "as root only: the folder (ours, open to traverse) for what "
           "Postgres's system user cannot reach where it is: binaries under a closed venv, data under a closed home",
           ("CRUDDUR_SYSTEM_DIR",)),
    Option("user_pool_name", "cruddur-user-pool", "name of the local Cognito user pool",
           ("CRUDDUR_USER_POOL_NAME",)),
    Option("user_pool_id", None, "Cognito user pool id (required on prod)",
           ("AWS_COGNITO_USER_POOL_ID",)),
    Option("connection_url", None, "libpq URL of the app database (sets pg_* at once)",
           ("CONNECTION_URL",)),
    Option("prod_connection_url", None, "libpq URL of the production database",
           ("PROD_CONNECTION_URL",)),
    Option("aws_endpoint_url", None, "DynamoDB endpoint URL (sets ddb_port; external backend)",
           ("AWS_ENDPOINT_URL",)),
    Option("stream_function_name", "cruddur-messaging-stream",
           "name of pattern E's stream Lambda on prod (its role and policy are named after it)",
           ("CRUDDUR_STREAM_FUNCTION_NAME",)),
    Option("stream_batch_size", 100, "stream records per invocation of the stream Lambda (1-10000)",
           ("CRUDDUR_STREAM_BATCH_SIZE",), parse=_batch_size),
    Option("stream_starting_position", "LATEST",
           "where a new stream Lambda trigger starts reading: LATEST or TRIM_HORIZON (fixed once created)",
           ("CRUDDUR_STREAM_STARTING_POSITION",), ("LATEST", "TRIM_HORIZON")),
)

OPTION_BY_NAME = {option.name: option for option in OPTIONS}
DEFAULTS: dict[str, Any] = {option.name: option.default for option in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """Everything a task needs to know, resolved once. Pass it down; never re-read the environment."""

    target: str
    backend: str
    region: str
    table_name: str
    billing_mode: str
    pg_port: int
    pg_user: str
    pg_password: str
    pg_database: str
    ddb_port: int
    ddb_engine: str
    dynamodb_local_path: str | None
    cognito_port: int
    ephemeral: bool
    ready_timeout: float
    state_dir: Path
    seeds_dir: Path
    cache_dir: Path
    system_dir: Path
    compose_files: tuple[Path, ...]
    user_pool_name: str
    user_pool_id: str | None
    connection_url: str | None
    prod_connection_url: str | None
    aws_endpoint_url: str | None
    stream_function_name: str
    stream_batch_size: int
    stream_starting_position: str
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_prod(self) -> bool:
        return self.target == "prod"

    def with_values(self, **values: Any) -> "Settings":
        return replace(self, **values)


def resolve_settings(
    file_values: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    flag_names: Mapping[str, str] | None = None,
    aws_region: Callable[[], tuple[str | None, str]] | None = None,
) -> Settings:
    """Layer defaults < ``file_values`` (invoke.yaml) < ``environ`` < ``flags`` into Settings.

    ``flags`` with the value None are "not given". Unknown keys in the file are
    reported, not ignored, so that a typo in invoke.yaml does not silently do nothing.
    A region not set for this tool (CRUDDUR_REGION, invoke.yaml) comes locally from the app's
    AWS_DEFAULT_REGION, else ``LOCAL_REGION``; on the prod target from ``aws_region`` (default:
    ``aws_chain_region``, this process's AWS configuration as boto3 reads it).
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = dict(DEFAULTS)
    sources: dict[str, str] = {name: "default" for name in values}

    for name, raw in (file_values or {}).items():
        if name not in OPTION_BY_NAME:
            raise ConfigError(f"invoke.yaml: unknown setting 'cruddur.{name}'; known: {', '.join(OPTION_BY_NAME)}")
        values[name] = _coerce(OPTION_BY_NAME[name], raw, "invoke.yaml")
        sources[name] = "invoke.yaml"

    for option in OPTIONS:
        for variable in option.env:
            if environ.get(variable):
                values[option.name] = _coerce(option, environ[variable], f"environment variable {variable}")
                sources[option.name] = f"env {variable}"
                break

    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        option = OPTION_BY_NAME[name]
        flag = (flag_names or {}).get(name, f"--{name.replace('_', '-')}")
        values[name] = _coerce(option, raw, flag)
        sources[name] = f"flag {flag}"

    _apply_connection_url(values, sources)
    _apply_endpoint_url(values, sources)
    if values["prod_connection_url"]:
        _postgres_url_parts(values["prod_connection_url"], sources["prod_connection_url"])
    _check_prod_endpoint(values, sources)
    if sources["region"] == "default":  # not set for this tool: what the AWS world around it says
        if values["target"] == "prod":
            values["region"], sources["region"] = _prod_region(aws_region or aws_chain_region)
        elif environ.get("AWS_DEFAULT_REGION"):
            values["region"], sources["region"] = environ["AWS_DEFAULT_REGION"], "env AWS_DEFAULT_REGION"
    values["state_dir"] = Path(values["state_dir"]).expanduser().resolve()
    values["seeds_dir"] = Path(values["seeds_dir"]).expanduser().resolve()
    values["cache_dir"] = Path(values["cache_dir"]).expanduser().resolve()
    values["system_dir"] = Path(values["system_dir"]).expanduser().resolve()
    values["compose_files"] = tuple(
        Path(part).expanduser().resolve() for part in str(values["compose_files"]).split(os.pathsep) if part
    )
    _check_table_name(values["table_name"], sources["table_name"])
    return Settings(**values, sources=sources)


def _coerce(option: Option, raw: Any, origin: str) -> Any:
    if raw is None:
        return None
    try:
        value = option.parse(str(raw)) if not isinstance(raw, bool) else raw
    except ValueError as exc:
        raise ConfigError(f"{origin}: invalid value {raw!r} for {option.name}: {exc}") from None
    if option.choices and value not in option.choices:
        raise ConfigError(
            f"{origin}: invalid value {raw!r} for {option.name}; choose one of: {', '.join(option.choices)}"
        )
    return value


def _apply_connection_url(values: dict[str, Any], sources: dict[str, str]) -> None:
    """CONNECTION_URL is the app's own way to say where Postgres is; it beats the pg_* defaults."""
    url = values["connection_url"]
    if not url:
        return
    origin = sources["connection_url"]
    parts = _postgres_url_parts(url, origin)
    for name, value in (
        ("pg_port", parts.port),
        ("pg_user", unquote(parts.username) if parts.username else None),
        ("pg_password", unquote(parts.password) if parts.password else None),
        ("pg_database", parts.path.lstrip("/") or None),
    ):
        if value is not None and sources[name] in ("default", "invoke.yaml"):
            values[name] = value
            sources[name] = origin


def _prod_region(aws_region: Callable[[], tuple[str | None, str]]) -> tuple[str, str]:
    """The prod target's region and where it came from, or a ConfigError saying how to set one (never a guess)."""
    region, source = aws_region()
    if not region:
        raise ConfigError(
            f"the prod target needs an AWS region, and none is set ({source}): set one with "
            "`export AWS_REGION=ca-central-1` (or AWS_DEFAULT_REGION), the `region` of your profile in the AWS config "
            "file (`aws configure set region ca-central-1`), or the setting region (CRUDDUR_REGION, invoke.yaml)")
    return region, source


def aws_chain_region() -> tuple[str | None, str]:
    """The region boto3 would use in this process, and where it came from (None and where it looked, for none).

    AWS_REGION first, as the AWS CLI v2 and the other AWS SDKs read it (boto3 itself ignores it); then what
    botocore's own configuration chain resolves, as ``boto3.Session().region_name`` does: AWS_DEFAULT_REGION,
    else the ``region`` of the profile (AWS_PROFILE, else ``default``) in the AWS config file (AWS_CONFIG_FILE,
    else ~/.aws/config; botocore also reads the credentials file's profiles).
    """
    import botocore.exceptions
    import botocore.session

    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"], "env AWS_REGION"
    session = botocore.session.Session()  # a fresh one: reads the environment and the files as they are now
    config_file = str(Path(session.get_config_variable("config_file")).expanduser())
    profile = session.profile or "default"
    try:
        region = session.get_config_variable("region")
    except botocore.exceptions.ProfileNotFound:
        raise ConfigError(f"env AWS_PROFILE: the profile {profile!r} is not in {config_file} (nor in the AWS "
                          "credentials file): fix AWS_PROFILE, or add the profile") from None
    except botocore.exceptions.ConfigParseError as exc:
        raise ConfigError(f"the AWS config file cannot be read: {exc}") from None
    if region and os.environ.get("AWS_DEFAULT_REGION") == region:
        return region, "env AWS_DEFAULT_REGION"
    if region:
        return region, f"profile {profile} in {config_file}"
    return None, f"not in AWS_REGION, AWS_DEFAULT_REGION, nor the profile {profile} in {config_file}"


def _postgres_url_parts(url: str, origin: str) -> SplitResult:
    """``url`` split into its parts, or a ConfigError (naming the URL masked) when libpq could not use it."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"{origin}: not a postgresql:// URL: {mask_url(url)}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise ConfigError(f"{origin}: the port of {mask_url(url)} is not a number from 1 to 65535") from None
    return parts


def _apply_endpoint_url(values: dict[str, Any], sources: dict[str, str]) -> None:
    url = values["aws_endpoint_url"]
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{sources['aws_endpoint_url']}: not an http(s) URL: {url!r}")
    if parts.port and sources["ddb_port"] in ("default", "invoke.yaml"):
        values["ddb_port"] = parts.port
        sources["ddb_port"] = sources["aws_endpoint_url"]


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def _check_prod_endpoint(values: dict[str, Any], sources: dict[str, str]) -> None:
    """A local AWS_ENDPOINT_URL together with the prod target is a likely mistake: refuse it.

    The prod target always uses real AWS and ignores the endpoint, so going on
    would silently drop one of two contradicting settings. The usual cause is
    a shell still holding the output of `invoke env`; a refusal costs an
    `unset`, a wrong guess could write fixtures to production.
    """
    url = values["aws_endpoint_url"]
    if values["target"] != "prod" or not url:
        return
    host = (urlsplit(url).hostname or "").lower()
    if host in LOOPBACK_HOSTS or host.startswith("127.") or host.endswith(".localhost"):
        raise ConfigError(
            f"{sources['aws_endpoint_url']}: {url} is a local endpoint, but the target is prod "
            f"({sources['target']}), which always uses real AWS. This shell looks set up for local work "
            "(`invoke env`): unset AWS_ENDPOINT_URL to act on prod, or drop the prod target to act locally."
        )


_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


def _check_table_name(name: str, origin: str) -> None:
    if not _TABLE_NAME.match(name):
        raise ConfigError(
            f"{origin}: DynamoDB rejects the table name {name!r}: use 3-255 characters of letters, digits, '_', '-', '.'"
        )


# libpq also takes a password as a URL query parameter or a key=value pair; value quoted or bare.
_PASSWORD_PARAMETER = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)")


def mask_url(url: str | None) -> str:
    """The URL with its password replaced by ``***``: the only form of a URL we ever print.

    Works on text only, never fails: it also masks malformed URLs (a bad port)
    and libpq's ``password=`` in a query string or a key/value connection string.
    """
    if not url:
        return ""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}")
    return _PASSWORD_PARAMETER.sub(r"\1***", urlunsplit(parts))


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def mask_text(text: str) -> str:
    """Any text (an error message from a library, say) with every URL in it masked by ``mask_url``."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _URL.sub(lambda found: mask_url(found.group()), text))


def masked_failure(exc: BaseException) -> Failure:
    """What the user is told about ``exc`` (``errors.describe``), every secret in its texts masked."""
    return describe(exc).masked(mask_text)


def postgres_url(host: str, port: int, user: str, password: str, database: str) -> str:
    """The one place a libpq URL is assembled."""
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(database, safe='')}"


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database (e.g. ``postgres`` for admin work)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{quote(database, safe='')}"))


@dataclass(frozen=True)
class Endpoints:
    """Where the running services answer. Built by the services layer; used by everything else.

    ``aws_endpoint_url`` None means real AWS through the normal boto3 credential chain.
    """

    postgres_url: str
    aws_endpoint_url: str | None
    region: str
    user_pool_id: str | None = None
    cognito_endpoint_url: str | None = None

    @property
    def is_local_aws(self) -> bool:
        return self.aws_endpoint_url is not None

    def endpoint_for(self, service_name: str) -> str | None:
        """The URL that serves ``service_name``: Cognito may have an endpoint of its own (docker backend)."""
        if service_name == "cognito-idp" and self.cognito_endpoint_url:
            return self.cognito_endpoint_url
        return self.aws_endpoint_url

    @property
    def admin_postgres_url(self) -> str:
        return with_database(self.postgres_url, "postgres")

    @property
    def database_name(self) -> str:
        return unquote(urlsplit(self.postgres_url).path.lstrip("/"))

    def client(self, service_name: str, timeout: float | None = None) -> Any:
        """A boto3 client for ``service_name``; the one place clients are configured.

        Clients are cached per endpoint and service: building one costs tens of
        milliseconds, and botocore clients are safe to share between threads.
        ``timeout`` bounds connecting and each read, with no retry: for probes
        that must give up by a deadline.
        """
        return _aws_client(self.endpoint_for(service_name), self.region, service_name, timeout)

    def masked(self) -> dict[str, str | None]:
        return {
            "postgres": mask_url(self.postgres_url),
            "aws_endpoint_url": self.aws_endpoint_url,
            "cognito_endpoint_url": self.cognito_endpoint_url,
            "region": self.region,
            "user_pool_id": self.user_pool_id,
        }


_CLIENT_LOCK = threading.Lock()


@functools.lru_cache(maxsize=None)
def _botocore_session() -> Any:
    # botocore directly: boto3's session pulls in s3transfer, a quarter second
    # of imports that no task here uses. One session: it caches the loaded
    # service models, so a second client costs 20 ms instead of 100.
    import botocore.session

    return botocore.session.get_session()


# A local service answers in milliseconds: one that has not connected or answered
# by then is hung or is not ours (an unrelated listener on its port), and waiting
# botocore's default 60 s per try (three tries) would look like a hang.
LOCAL_CONNECT_TIMEOUT = 2.0
LOCAL_READ_TIMEOUT = 10.0


def _aws_client(endpoint_url: str | None, region: str, service_name: str, timeout: float | None = None) -> Any:
    # Creating clients from one session is not thread-safe; using them is.
    with _CLIENT_LOCK:
        return _cached_client(endpoint_url, region, service_name, timeout)


def _client_config(endpoint_url: str | None, timeout: float | None) -> Any:
    from botocore.config import Config

    if timeout is not None:
        return Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
    if endpoint_url:
        return Config(connect_timeout=LOCAL_CONNECT_TIMEOUT, read_timeout=LOCAL_READ_TIMEOUT,
                      retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=32)
    return Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=32)


@functools.lru_cache(maxsize=None)
def _cached_client(endpoint_url: str | None, region: str, service_name: str, timeout: float | None) -> Any:
    kwargs: dict[str, Any] = {"region_name": region, "config": _client_config(endpoint_url, timeout)}
    if endpoint_url:
        kwargs.update(
            endpoint_url=endpoint_url,
            aws_access_key_id=LOCAL_AWS_ACCESS_KEY_ID,
            aws_secret_access_key=LOCAL_AWS_SECRET_ACCESS_KEY,
        )
    return _botocore_session().create_client(service_name, **kwargs)
