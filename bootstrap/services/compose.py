"""The subset of the Compose file format that the docker backend uses: parse, merge, hash. Pure.

docker-compose.yml is the single source of truth for the containers: plain
``docker compose up`` and ``invoke up --backend docker`` read the same file.
This module reads only what that file needs and refuses the rest, naming the
file and the key, rather than silently ignoring what it does not understand:

- top level: ``services``, ``volumes`` (named volumes, no options), and the
  obsolete ``version`` (ignored, as compose does);
- per service: ``image``, ``command``, ``environment``, ``ports``, ``volumes``,
  ``healthcheck``, ``user``, ``working_dir``.

Several files merge in order like ``docker compose -f a -f b``: mappings merge
key by key, scalars and ``command`` are replaced, ``environment`` merges by
variable, ``ports`` are appended (duplicates dropped), ``volumes`` merge by
container path, and compose's ``!reset`` / ``!override`` tags reset or replace
a value. Relative bind-mount paths are relative to the first file's folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError

TOP_LEVEL_KEYS = ("services", "volumes", "version")
SERVICE_KEYS = ("image", "command", "environment", "ports", "volumes", "healthcheck", "user", "working_dir")
HEALTHCHECK_KEYS = ("test", "interval", "timeout", "retries", "start_period", "disable")
PORT_KEYS = ("target", "published", "host_ip", "protocol")
MOUNT_KEYS = ("type", "source", "target", "read_only")


@dataclass(frozen=True)
class PortSpec:
    """One published port; ``published`` None lets the engine choose a free host port."""

    target: int
    published: int | None = None
    host_ip: str = ""
    protocol: str = "tcp"


@dataclass(frozen=True)
class MountSpec:
    """A named volume (``source`` is the volume's name in the file) or a bind mount (absolute host path)."""

    kind: str
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class HealthcheckSpec:
    """``test`` as the engine takes it (``CMD``/``CMD-SHELL``/``NONE`` first); durations in seconds, None = default."""

    test: tuple[str, ...]
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    ports: tuple[PortSpec, ...] = ()
    volumes: tuple[MountSpec, ...] = ()
    healthcheck: HealthcheckSpec | None = None
    user: str | None = None
    working_dir: str | None = None


@dataclass(frozen=True)
class ComposeProject:
    services: tuple[ServiceSpec, ...]
    volumes: tuple[str, ...]
    files: tuple[str, ...]

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise ConfigError(f"{', '.join(self.files)}: no service '{name}' (the docker backend needs it)")


# --- YAML with compose's merge tags ----------------------------------------------


@dataclass(frozen=True)
class _Reset:
    """``!reset``: the value is removed from what earlier files said."""


@dataclass(frozen=True)
class _Override:
    """``!override VALUE``: VALUE replaces what earlier files said instead of merging with it."""

    value: Any


def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_reset(loader: Any, node: Any) -> _Reset:
        return _Reset()

    def construct_override(loader: Any, node: Any) -> _Override:
        if isinstance(node, yaml.MappingNode):
            return _Override(loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return _Override(loader.construct_sequence(node, deep=True))
        return _Override(loader.construct_scalar(node))

    Loader.add_constructor("!reset", construct_reset)
    Loader.add_constructor("!override", construct_override)
    return Loader


def load_compose(paths: Sequence[Path]) -> ComposeProject:
    """Read and merge the compose files, in order."""
    sources = []
    for path in paths:
        try:
            sources.append((str(path), path.read_text()))
        except OSError as exc:
            raise ConfigError(f"cannot read compose file {path}: {exc.strerror}") from None
    return parse_compose(sources, Path(paths[0]).resolve().parent)


def parse_compose(sources: Sequence[tuple[str, str]], project_dir: Path) -> ComposeProject:
    """Parse ``(file name, YAML text)`` pairs, merge them in order, and check the result."""
    import yaml

    if not sources:
        raise ConfigError("no compose file given")
    merged: dict[str, Any] = {"services": {}, "volumes": {}}
    for origin, text in sources:
        try:
            document = yaml.load(text, Loader=_yaml_loader()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
        _merge_file(merged, _normalise_file(origin, document, project_dir))
    return _build(merged, tuple(origin for origin, _ in sources))


# --- one file: check keys and bring every value to one shape ---------------------


def _normalise_file(origin: str, document: Any, project_dir: Path) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ConfigError(f"{origin}: a compose file is a mapping with a 'services' key")
    _check_keys(origin, "", document, TOP_LEVEL_KEYS)
    services = _unwrap(document.get("services")) or {}
    volumes = _unwrap(document.get("volumes")) or {}
    if not isinstance(services, dict) or not isinstance(volumes, dict):
        raise ConfigError(f"{origin}: 'services' and 'volumes' must be mappings")
    for name, options in volumes.items():
        if options not in (None, {}):
            raise ConfigError(f"{origin}: volumes.{name}: volume options are not supported; declare it as `{name}:`")
    return {
        "services": {name: _normalise_service(origin, name, raw, project_dir) for name, raw in services.items()},
        "volumes": dict.fromkeys(volumes),
    }


def _normalise_service(origin: str, name: str, raw: Any, project_dir: Path) -> dict[str, Any]:
    where = f"services.{name}"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: {where} must be a mapping")
    _check_keys(origin, where, raw, SERVICE_KEYS)
    normalisers = {
        "image": _text,
        "user": _text,
        "working_dir": _text,
        "command": _command,
        "environment": _environment,
        "ports": lambda o, w, v: [_port(o, w, item) for item in _sequence(o, w, v)],
        "volumes": lambda o, w, v: [_mount(o, w, item, project_dir) for item in _sequence(o, w, v)],
        "healthcheck": _healthcheck,
    }
    result: dict[str, Any] = {}
    for key, value in raw.items():
        normalise = normalisers[key]
        if isinstance(value, _Reset):
            result[key] = value
        elif isinstance(value, _Override):
            result[key] = _Override(normalise(origin, f"{where}.{key}", value.value))
        else:
            result[key] = normalise(origin, f"{where}.{key}", value)
    return result


def _check_keys(origin: str, where: str, mapping: Mapping[str, Any], known: Sequence[str]) -> None:
    for key in mapping:
        if key not in known:
            path = f"{where}.{key}" if where else str(key)
            raise ConfigError(
                f"{origin}: unsupported key '{path}'; the docker backend reads only: {', '.join(known)}"
            )


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, _Override) else (None if isinstance(value, _Reset) else value)


def _sequence(origin: str, where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{origin}: {where} must be a list")
    return value


def _text(origin: str, where: str, value: Any) -> str:
    if isinstance(value, (dict, list, bool)) or value is None:
        raise ConfigError(f"{origin}: {where} must be a string")
    return str(value)


def _command(origin: str, where: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    return [_text(origin, where, item) for item in _sequence(origin, where, value)]


def _environment(origin: str, where: str, value: Any) -> dict[str, str]:
    pairs: list[tuple[Any, Any]]
    if isinstance(value, list):
        pairs = []
        for item in value:
            name, equals, assigned = _text(origin, where, item).partition("=")
            pairs.append((name, assigned if equals else None))
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise ConfigError(f"{origin}: {where} must be a mapping or a list of NAME=VALUE")
    result = {}
    for name, text in pairs:
        if text is None:
            raise ConfigError(
                f"{origin}: {where}.{name} has no value; the docker backend does not pass variables from your shell"
            )
        result[str(name)] = ("true" if text else "false") if isinstance(text, bool) else str(text)
    return result


_SHORT_PORT = re.compile(r"^(?:(?:(?P<ip>[0-9.]+):)?(?P<published>\d*):)?(?P<target>\d+)(?:/(?P<protocol>tcp|udp))?$")


def _port(origin: str, where: str, value: Any) -> PortSpec:
    if isinstance(value, dict):
        _check_keys(origin, where, value, PORT_KEYS)
        try:
            published = value.get("published")
            return PortSpec(int(value["target"]), int(published) if published not in (None, "") else None,
                            str(value.get("host_ip", "")), str(value.get("protocol", "tcp")))
        except (KeyError, ValueError):
            raise ConfigError(f"{origin}: {where}: a port needs a numeric 'target' (and 'published')") from None
    match = _SHORT_PORT.match(str(value)) if not isinstance(value, bool) else None
    if match is None:
        raise ConfigError(
            f"{origin}: {where}: unsupported port {value!r}; use [HOST_IP:][HOST:]CONTAINER[/tcp|udp] (no ranges)"
        )
    published = match["published"]
    return PortSpec(int(match["target"]), int(published) if published else None,
                    match["ip"] or "", match["protocol"] or "tcp")


def _mount(origin: str, where: str, value: Any, project_dir: Path) -> MountSpec:
    if isinstance(value, dict):
        _check_keys(origin, where, value, MOUNT_KEYS)
        kind, source, target = value.get("type"), value.get("source"), value.get("target")
        read_only = bool(value.get("read_only", False))
        if kind not in ("volume", "bind") or not source or not target:
            raise ConfigError(f"{origin}: {where}: a mount needs type (volume or bind), source and target")
    else:
        parts = _text(origin, where, value).split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise ConfigError(
                f"{origin}: {where}: unsupported volume {value!r}; use SOURCE:TARGET[:ro|rw] (no anonymous volumes)"
            )
        source, target = parts[0], parts[1]
        read_only = len(parts) == 3 and parts[2] == "ro"
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
    if kind == "bind":
        source = str((project_dir / Path(source).expanduser()).resolve())
    return MountSpec(kind, str(source), str(target), read_only)


def _healthcheck(origin: str, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{origin}: {where} must be a mapping")
    _check_keys(origin, where, value, HEALTHCHECK_KEYS)
    result: dict[str, Any] = {}
    if value.get("disable"):
        result["test"] = ["NONE"]
    elif "test" in value:
        test = value["test"]
        result["test"] = ["CMD-SHELL", test] if isinstance(test, str) else _command(origin, f"{where}.test", test)
        if result["test"][0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise ConfigError(f"{origin}: {where}.test must start with CMD, CMD-SHELL or NONE")
    for key in ("interval", "timeout", "start_period"):
        if key in value:
            result[key] = _duration(origin, f"{where}.{key}", value[key])
    if "retries" in value:
        try:
            result["retries"] = int(value["retries"])
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: {where}.retries must be a whole number") from None
    return result


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(origin: str, where: str, value: Any) -> float:
    """Compose durations: ``1m30s``, ``500ms``, ``2s``."""
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ConfigError(f"{origin}: {where}: not a duration: {value!r} (e.g. 2s, 500ms, 1m30s)")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


# --- merging files in order ------------------------------------------------------


def _merge_file(merged: dict[str, Any], file: dict[str, Any]) -> None:
    merged["volumes"].update(file["volumes"])
    for name, service in file["services"].items():
        base = merged["services"].setdefault(name, {})
        for key, value in service.items():
            _merge_key(base, key, value)


def _merge_key(base: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, _Reset):
        base.pop(key, None)
    elif isinstance(value, _Override) or key not in base:
        base[key] = _unwrap(value)
    elif key == "environment" or key == "healthcheck":
        base[key] = {**base[key], **value}
    elif key == "ports":
        base[key] = base[key] + [port for port in value if port not in base[key]]
    elif key == "volumes":
        targets = {mount.target for mount in value}
        base[key] = [mount for mount in base[key] if mount.target not in targets] + value
    else:
        base[key] = value


def _build(merged: dict[str, Any], files: tuple[str, ...]) -> ComposeProject:
    declared = tuple(merged["volumes"])
    services = []
    for name, raw in merged["services"].items():
        if not raw.get("image"):
            raise ConfigError(f"{', '.join(files)}: services.{name} has no image")
        for mount in raw.get("volumes", []):
            if mount.kind == "volume" and mount.source not in declared:
                raise ConfigError(
                    f"{', '.join(files)}: services.{name} uses volume '{mount.source}', "
                    "which the top-level 'volumes' does not declare"
                )
        health = raw.get("healthcheck")
        if health is not None and "test" not in health:
            raise ConfigError(f"{', '.join(files)}: services.{name}.healthcheck has no test")
        services.append(ServiceSpec(
            name=name,
            image=raw["image"],
            command=tuple(raw["command"]) if "command" in raw else None,
            environment=tuple(sorted(raw.get("environment", {}).items())),
            ports=tuple(raw.get("ports", [])),
            volumes=tuple(raw.get("volumes", [])),
            healthcheck=HealthcheckSpec(**{**health, "test": tuple(health["test"])}) if health else None,
            user=raw.get("user"),
            working_dir=raw.get("working_dir"),
        ))
    return ComposeProject(tuple(services), declared, files)


# --- the identity of a container's configuration ----------------------------------


def config_hash(spec: ServiceSpec, **resolved: Any) -> str:
    """A digest of the service as the files say it plus what the backend resolved (image id, host ports, ...).

    Containers carry it as a label: an equal hash means the running container
    already is what the files ask for.
    """
    document = {"spec": asdict(spec), "resolved": resolved}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
