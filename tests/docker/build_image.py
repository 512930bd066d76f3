"""Build the local images that the docker-engine tests run, without any registry.

No container registry is reachable from the development and CI machines, so
the images of docker-compose.yml (postgres, amazon/dynamodb-local, moto) cannot
be pulled there. Instead this builds ONE root filesystem with ``mmdebstrap``
from Debian's packages (bookworm minbase + postgresql-15 + python3 + Java 17),
installs ``moto[server]``, at the version of the test environment, into
/opt/moto from a wheelhouse built on the host (offline inside the rootfs), and
copies this machine's DynamoDB Local (``DynamoDBLocal.jar`` and
``DynamoDBLocal_lib``, as ``invoke ddb.install-local`` installs them) into
/home/dynamodblocal, where the official amazon/dynamodb-local image keeps them.
The tarball is cached under the cache folder, keyed by everything that goes
into it (the mmdebstrap command, the moto version, DynamoDB Local's release
folder, the image settings), so only the first run pays for the build (a few
minutes, mostly downloads). The Postgres entrypoint is not baked in: the
compose override bind-mounts it.

The rootfs is imported once, as ``cruddur-test/services`` (for ``db`` and
``cognito``, whose override gives a command). ``dynamodb-local`` runs the
compose file's own command (``-jar DynamoDBLocal.jar ...``), which only works
with the official image's ``java`` entrypoint, so a second tag,
``cruddur-test/dynamodb-local``, is derived from the first by a two-line
Dockerfile (entrypoint and working folder): it shares every layer, so it costs
neither a second import nor disk.

Assumes: root, Debian with ``mmdebstrap`` installed (``.ci/run`` installs it),
the package mirror reachable, DynamoDB Local's files on this machine. Run by
hand, from the project folder (it finds DynamoDB Local with ``bootstrap``):
``.venv/bin/python -m tests.docker.build_image unix:///path/to/docker.sock``
prints the tags it made.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

REPOSITORY = "cruddur-test/services"
DYNAMODB_LOCAL_REPOSITORY = "cruddur-test/dynamodb-local"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = "postgresql-15,python3,python3-venv,openjdk-17-jre-headless"
MOTO_REQUIREMENT = f"moto[server]=={version('moto')}"
IMAGE_CHANGES = ["ENV PATH=/opt/moto/bin:/usr/local/bin:/usr/bin:/bin"]
# Where the official amazon/dynamodb-local image keeps the jar; the compose file's
# working_dir and volume point there.
DYNAMODB_LOCAL_HOME = "/home/dynamodblocal"
# What the official image adds on top of its files (its entrypoint is `java`), on top of the rootfs.
DYNAMODB_LOCAL_DOCKERFILE = f'ENTRYPOINT ["java"]\nWORKDIR {DYNAMODB_LOCAL_HOME}\n'


def cache_dir() -> Path:
    root = os.environ.get("CRUDDUR_TEST_CACHE") or Path.home() / ".cache" / "cruddur-bootstrap"
    folder = Path(root) / "docker-test"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def find_dynamodb_local() -> Path | None:
    """The folder of this machine's ``DynamoDBLocal.jar``, found as the project finds it; None when absent.

    Reads the user's own settings (their cache folder, ``dynamodb_local_path``), so
    call it before a test isolates the environment. A wrapper command without a
    jar we can see (Homebrew's) does not count: the image needs the files.
    """
    from bootstrap.services import dynamodb_local
    from bootstrap.config import resolve_settings

    settings = resolve_settings({}, {k: v for k, v in os.environ.items() if k.startswith("CRUDDUR_")}, {})
    installation = dynamodb_local.find_installation(settings)
    return installation.jar_dir if installation else None


def build_key(dynamodb_local: Path) -> str:
    """A digest of every input of the images: a change to any of them builds a new one.

    DynamoDB Local's release folder (``dynamodb_local_<date>``) names its version;
    the rest of its host path does not matter.
    """
    recipe = [*_mmdebstrap_command(Path("WHEELHOUSE"), Path("DYNAMODB_LOCAL") / dynamodb_local.name, Path("TARGET")),
              *IMAGE_CHANGES, DYNAMODB_LOCAL_DOCKERFILE]
    return hashlib.sha256("\0".join(recipe).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    # pytest-xdist workers may build at the same time; one builds, the others wait and reuse.
    with open(folder / "build.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rootfs_tarball(dynamodb_local: Path) -> Path:
    """The cached rootfs tarball for the current inputs, built when missing."""
    folder = cache_dir()
    key = build_key(dynamodb_local)
    tarball = folder / f"rootfs-{key}.tar"
    with _locked(folder):
        if tarball.exists():
            return tarball
        for stale in [*folder.glob("rootfs-*.tar"), *folder.glob("partial-*.tar")]:
            stale.unlink()
        wheelhouse = _wheelhouse(folder)
        partial = folder / f"partial-{key}.tar"  # mmdebstrap picks its output format by the suffix
        _run(_mmdebstrap_command(wheelhouse, dynamodb_local, partial))
        partial.rename(tarball)
    return tarball


def _wheelhouse(folder: Path) -> Path:
    wheelhouse = folder / f"wheelhouse-{hashlib.sha256(MOTO_REQUIREMENT.encode()).hexdigest()[:12]}"
    if not (wheelhouse / ".complete").exists():
        shutil.rmtree(wheelhouse, ignore_errors=True)
        # `pip wheel`, not `pip download`: the few sdists become wheels here, so the
        # offline install inside the rootfs needs no build tools.
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheelhouse), MOTO_REQUIREMENT])
        (wheelhouse / ".complete").touch()
    return wheelhouse


def _mmdebstrap_command(wheelhouse: Path, dynamodb_local: Path, target: Path) -> list[str]:
    inside = f"/tmp/{wheelhouse.name}"
    return [
        "mmdebstrap", "--variant=minbase", f"--include={PACKAGES}", "--quiet",
        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-exclude=/usr/share/info/*",
        # The entrypoint makes the cluster at first start; the package's default cluster would be dead weight.
        ("--essential-hook=mkdir -p \"$1/etc/postgresql-common/createcluster.d\" && "
         "echo 'create_main_cluster = false' > \"$1/etc/postgresql-common/createcluster.d/no-main.conf\""),
        # OpenJDK's postinst links its man page into man1 and fails when that folder is missing,
        # as it is with the man pages excluded (Debian bug #863199).
        "--essential-hook=mkdir -p \"$1/usr/share/man/man1\"",
        f"--customize-hook=copy-in {wheelhouse} /tmp",
        "--customize-hook=chroot \"$1\" python3 -m venv /opt/moto",
        (f"--customize-hook=chroot \"$1\" /opt/moto/bin/pip install --quiet --no-index --find-links {inside} "
         f"'{MOTO_REQUIREMENT}'"),
        f"--customize-hook=rm -rf \"$1{inside}\"",
        f"--customize-hook=mkdir -p \"$1{DYNAMODB_LOCAL_HOME}\"",
        f"--customize-hook=copy-in {dynamodb_local}/DynamoDBLocal.jar {dynamodb_local}/DynamoDBLocal_lib "
        f"{DYNAMODB_LOCAL_HOME}",
        # Postgres's JIT (LLVM, a third of the image) is optional: without it the import is much faster.
        ("--customize-hook=rm -rf \"$1\"/usr/lib/postgresql/15/lib/bitcode \"$1\"/usr/lib/postgresql/15/lib/llvmjit*"
         " \"$1\"/usr/lib/x86_64-linux-gnu/libLLVM-14.so* \"$1\"/usr/lib/x86_64-linux-gnu/libz3.so*"),
        SUITE, str(target), MIRROR,
    ]


def _run(command: list[str]) -> None:
    log.info("running %s", " ".join(command))
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed (exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-4000:]}")


def ensure_images(client: Any, dynamodb_local: Path) -> tuple[str, str]:
    """Make both images in the engine of ``client`` (a docker SDK client) unless it has them; return their tags.

    ``dynamodb_local`` is the folder of the ``DynamoDBLocal.jar`` to bake in.
    """
    import docker.errors

    key = build_key(dynamodb_local)
    services, dynamodb = f"{REPOSITORY}:{key}", f"{DYNAMODB_LOCAL_REPOSITORY}:{key}"
    try:
        client.images.get(services)
    except docker.errors.ImageNotFound:
        client.api.import_image_from_file(str(rootfs_tarball(dynamodb_local)), repository=REPOSITORY, tag=key,
                                          changes=IMAGE_CHANGES)
    try:
        client.images.get(dynamodb)
    except docker.errors.ImageNotFound:
        # pull=False: the base is the local image just imported, and no registry is reachable anyway.
        dockerfile = io.BytesIO(f"FROM {services}\n{DYNAMODB_LOCAL_DOCKERFILE}".encode())
        client.images.build(fileobj=dockerfile, tag=dynamodb, pull=False, rm=True)
    # The compose override names the images by a fixed tag; the keyed tag says which build it is.
    for tag in (services, dynamodb):
        client.images.get(tag).tag(tag.partition(":")[0], "latest")
    return services, dynamodb


if __name__ == "__main__":
    import docker

    logging.basicConfig(level=logging.INFO)
    host = sys.argv[1] if len(sys.argv) > 1 else None
    engine = docker.DockerClient(base_url=host) if host else docker.from_env()
    release = find_dynamodb_local()
    if release is None:
        sys.exit("DynamoDB Local's files are not on this machine: run `invoke ddb.install-local` first")
    print(*ensure_images(engine, release))
