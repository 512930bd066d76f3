"""Build the one local image that the docker-engine tests run, without any registry.

No container registry is reachable from the development and CI machines, so
the images of docker-compose.yml (postgres, amazon/dynamodb-local, moto) cannot
be pulled there. Instead this builds ONE root filesystem with ``mmdebstrap``
from Debian's packages (bookworm minbase + postgresql-15 + python3) and installs
``moto[server]``, at the version of the test environment, into /opt/moto from
a wheelhouse built on the host (offline inside the rootfs). The tarball is
cached under the cache folder, keyed by everything that goes into it (the
mmdebstrap command, the moto version, the image settings), so only the first
run pays for the build (one to two minutes, mostly downloads). The Postgres
entrypoint is not baked in: the compose override bind-mounts it.

Assumes: root, Debian with ``mmdebstrap`` installed (``.ci/run`` installs it),
the package mirror reachable. Run by hand: ``python tests/docker/build_image.py
unix:///path/to/docker.sock`` prints the tag it made.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
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
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = "postgresql-15,python3,python3-venv"
MOTO_REQUIREMENT = f"moto[server]=={version('moto')}"
IMAGE_CHANGES = ["ENV PATH=/opt/moto/bin:/usr/local/bin:/usr/bin:/bin"]


def cache_dir() -> Path:
    root = os.environ.get("CRUDDUR_TEST_CACHE") or Path.home() / ".cache" / "cruddur-bootstrap"
    folder = Path(root) / "docker-test"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def build_key() -> str:
    """A digest of every input of the rootfs: a change to any of them builds a new one."""
    recipe = [*_mmdebstrap_command(Path("WHEELHOUSE"), Path("TARGET")), *IMAGE_CHANGES]
    return hashlib.sha256("\0".join(recipe).encode()).hexdigest()[:16]


def image_tag() -> str:
    return f"{REPOSITORY}:{build_key()}"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    # pytest-xdist workers may build at the same time; one builds, the others wait and reuse.
    with open(folder / "build.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rootfs_tarball() -> Path:
    """The cached rootfs tarball for the current inputs, built when missing."""
    folder = cache_dir()
    tarball = folder / f"rootfs-{build_key()}.tar"
    with _locked(folder):
        if tarball.exists():
            return tarball
        for stale in [*folder.glob("rootfs-*.tar"), *folder.glob("partial-*.tar")]:
            stale.unlink()
        wheelhouse = _wheelhouse(folder)
        partial = folder / f"partial-{build_key()}.tar"  # mmdebstrap picks its output format by the suffix
        _run(_mmdebstrap_command(wheelhouse, partial))
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


def _mmdebstrap_command(wheelhouse: Path, target: Path) -> list[str]:
    inside = f"/tmp/{wheelhouse.name}"
    return [
        "mmdebstrap", "--variant=minbase", f"--include={PACKAGES}", "--quiet",
        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-exclude=/usr/share/info/*",
        # The entrypoint makes the cluster at first start; the package's default cluster would be dead weight.
        ("--essential-hook=mkdir -p \"$1/etc/postgresql-common/createcluster.d\" && "
         "echo 'create_main_cluster = false' > \"$1/etc/postgresql-common/createcluster.d/no-main.conf\""),
        f"--customize-hook=copy-in {wheelhouse} /tmp",
        "--customize-hook=chroot \"$1\" python3 -m venv /opt/moto",
        (f"--customize-hook=chroot \"$1\" /opt/moto/bin/pip install --quiet --no-index --find-links {inside} "
         f"'{MOTO_REQUIREMENT}'"),
        f"--customize-hook=rm -rf \"$1{inside}\"",
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


def ensure_image(client: Any) -> str:
    """Import the rootfs into the engine of ``client`` (a docker SDK client) unless it has it; return the tag."""
    import docker.errors

    tag = image_tag()
    repository, _, key = tag.partition(":")
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        client.api.import_image_from_file(str(rootfs_tarball()), repository=repository, tag=key,
                                          changes=IMAGE_CHANGES)
        image = client.images.get(tag)
    # The compose override names the image by a fixed tag; the keyed tag says which build it is.
    image.tag(repository, "latest")
    return tag


if __name__ == "__main__":
    import docker

    logging.basicConfig(level=logging.INFO)
    host = sys.argv[1] if len(sys.argv) > 1 else None
    engine = docker.DockerClient(base_url=host) if host else docker.from_env()
    print(ensure_image(engine))
