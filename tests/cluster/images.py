"""Container images for the real test node, built here because none can be pulled.

* **pause**: the sandbox image containerd starts for every pod (``go/cmd/pause``),
  packed with ``umoci`` and ``skopeo``.
* **python base**: the public ``python:3.11.14-slim-bookworm`` cannot be pulled, so a
  base of the same Python is made from Debian packages with ``mmdebstrap``. It carries
  the machine's CA bundle (the file ``PIP_CERT``/``SSL_CERT_FILE`` names) because
  package registries are reached through TLS inspection here.
* **project**: the project's own ``Dockerfile``, built for real with ``buildah``
  (``--build-arg PYTHON_BASE=<the base above>``).
* **flows**: ``FROM`` the project image with ``examples/flows`` in ``/opt/flows``, as
  the README tells users to build theirs.

Each image is saved as a docker-archive tarball under ``~/.cache/headrace/images``
named by a hash of its inputs (``HEADRACE_IMAGE_CACHE`` overrides; the two newest of
each kind are kept), so warm runs only import them. buildah uses a throwaway ``vfs`` store (no overlay mounts to leak) with
``chroot`` isolation.

Usage: ``python tests/cluster/images.py [--force]`` builds everything missing.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster import build, procs

REPO = Path(__file__).resolve().parents[2]
# Bump when a recipe below changes in a way the hashed inputs do not show.
RECIPE_VERSION = "1"
DEBIAN_SUITE = "bookworm"
# libpython3.11-dev: Python's headers, which python:slim has too (the Dockerfile's build stage
# compiles the engine's hot path with mypyc against them).
BASE_PACKAGES = (
    "python3",
    "python3-venv",
    "python3-pip",
    "libpython3.11-dev",
    "ca-certificates",
    "passwd",
)
# What the Dockerfile's COPY lines read; the build context holds exactly these.
PROJECT_CONTEXT = ("Dockerfile", "pyproject.toml", "uv.lock", "README.md", "operator", "crds")
FLOWS_DIR = REPO / "examples" / "flows"
CA_IN_IMAGE = "/usr/local/share/ca-certificates/headrace-machine-bundle.crt"
# Tools these builds need, all from Debian (scripts/setup installs them when root).
TOOLS = ("umoci", "skopeo", "buildah", "mmdebstrap")


class ImageBuildError(RuntimeError):
    """An image could not be built (the message has the failing command's output)."""


@dataclass(frozen=True)
class Image:
    """A built image: its reference and the docker-archive tarball that holds it."""

    ref: str
    archive: Path


def cache_root() -> Path:
    env = os.environ.get("HEADRACE_IMAGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "headrace" / "images"


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def machine_ca_bundle() -> Path:
    """The CA bundle this machine trusts (registries may sit behind TLS inspection)."""
    for variable in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    return Path("/etc/ssl/certs/ca-certificates.crt")


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256(RECIPE_VERSION.encode())
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:12]


def _tree_bytes(root: Path, paths: Iterable[str]) -> bytes:
    """Names and contents of the files under ``paths`` (caches and bytecode skipped)."""
    chunks: list[bytes] = []
    for rel in paths:
        top = root / rel
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            chunks.append(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return b"\0\0".join(chunks)


def _run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(
        cmd,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        # A killed test run must not leave a build running (same as procs.spawn).
        preexec_fn=procs.death_signal_preexec(signal.SIGKILL, os.getpid()),
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise ImageBuildError(f"{' '.join(cmd)} failed ({result.returncode}):\n{tail}")
    return result.stdout


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialize builds of one image across concurrent sessions."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def _buildah_store() -> Iterator[list[str]]:
    """A throwaway buildah store (vfs: plain directories, nothing mounted)."""
    root = Path(tempfile.mkdtemp(prefix="buildah-", dir=cache_root()))
    try:
        yield [
            "buildah",
            f"--root={root / 'root'}",
            f"--runroot={root / 'run'}",
            "--storage-driver=vfs",
        ]
    finally:
        # vfs layers may hold read-only dirs; buildah's own cleanup handles them.
        with contextlib.suppress(Exception):
            subprocess.run(
                [
                    "buildah",
                    f"--root={root / 'root'}",
                    f"--runroot={root / 'run'}",
                    "--storage-driver=vfs",
                    "rm",
                    "--all",
                ],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def _buildah_env() -> dict[str, str]:
    env = dict(os.environ)
    env["BUILDAH_ISOLATION"] = "chroot"
    env["STORAGE_DRIVER"] = "vfs"
    return env


def _finish(tmp: Path, archive: Path, started: float, what: str) -> None:
    """Move the archive into place; keep only the newest two of its kind (disk space)."""
    tmp.rename(archive)
    kind = archive.name.rsplit("-", 1)[0]
    older = sorted(
        (p for p in archive.parent.glob(f"{kind}-*.tar") if p != archive),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in older[1:]:
        stale.unlink(missing_ok=True)
    size = archive.stat().st_size / 1e6
    print(f"image {what} built in {time.monotonic() - started:.1f}s ({size:.0f} MB)", flush=True)


# -- pause ----------------------------------------------------------------------------


def pause_image(pause_binary: Path, force: bool = False) -> Image:
    """The pod sandbox image: ``/pause`` alone, as uid 65535 like the upstream one."""
    key = _digest(b"pause", pause_binary.read_bytes())
    image = Image(f"localhost/headrace/pause:{key}", cache_root() / f"pause-{key}.tar")
    if image.archive.is_file() and not force:
        return image
    with _locked("pause"):
        if image.archive.is_file() and not force:
            return image
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=cache_root()) as tmpdir:
            work = Path(tmpdir)
            layout = f"{work / 'oci'}:pause"  # umoci's --image; skopeo wants oci: before it
            _run(["umoci", "init", "--layout", str(work / "oci")])
            _run(["umoci", "new", "--image", layout])
            _run(["umoci", "unpack", "--image", layout, str(work / "bundle")])
            shutil.copy2(pause_binary, work / "bundle" / "rootfs" / "pause")
            (work / "bundle" / "rootfs" / "pause").chmod(0o755)
            _run(["umoci", "repack", "--image", layout, str(work / "bundle")])
            config = ["--config.entrypoint", "/pause", "--config.user", "65535:65535"]
            platform = ["--architecture", "amd64", "--os", "linux"]
            _run(["umoci", "config", "--image", layout, *config, *platform])
            tmp = work / "image.tar"
            _run(["skopeo", "copy", f"oci:{layout}", f"docker-archive:{tmp}:{image.ref}"])
            _finish(tmp, image.archive, started, image.ref)
    return image


# -- python base ------------------------------------------------------------------------


def base_image(force: bool = False) -> Image:
    """Debian's Python 3.11 standing in for python:3.11.14-slim-bookworm."""
    ca = machine_ca_bundle()
    key = _digest(b"base", DEBIAN_SUITE.encode(), " ".join(BASE_PACKAGES).encode(), ca.read_bytes())
    image = Image(f"localhost/headrace/python-base:{key}", cache_root() / f"python-base-{key}.tar")
    if image.archive.is_file() and not force:
        return image
    with _locked("python-base"):
        if image.archive.is_file() and not force:
            return image
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=cache_root()) as tmpdir:
            work = Path(tmpdir)
            rootfs_tar = work / "rootfs.tar"
            _run(
                [
                    "mmdebstrap",
                    "--quiet",
                    "--variant=apt",
                    f"--include={','.join(BASE_PACKAGES)}",
                    # As in python:slim: pip may install into the system interpreter, and
                    # `pip` is on PATH (Debian ships pip3 and pip in /usr/bin already).
                    '--customize-hook=rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED',
                    f"--customize-hook=copy-in {ca} /usr/local/share/ca-certificates",
                    f'--customize-hook=mv "$1"/usr/local/share/ca-certificates/{ca.name} '
                    f'"$1"{CA_IN_IMAGE}',
                    '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
                    DEBIAN_SUITE,
                    str(rootfs_tar),
                ]
            )
            with _buildah_store() as buildah:
                env = _buildah_env()
                container = _run([*buildah, "from", "scratch"], env=env).strip()
                _run([*buildah, "add", container, str(rootfs_tar), "/"], env=env)
                config = [*buildah, "config"]
                for variable in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"):
                    config += ["--env", f"{variable}={CA_IN_IMAGE}"]
                config += ["--env", "LANG=C.UTF-8", "--cmd", "python3", container]
                _run(config, env=env)
                _run([*buildah, "commit", "--quiet", container, image.ref], env=env)
                tmp = work / "image.tar"
                _run([*buildah, "push", image.ref, f"docker-archive:{tmp}:{image.ref}"], env=env)
            _finish(tmp, image.archive, started, image.ref)
    return image


# -- the project image and a flow image on top ----------------------------------------------


def _load(buildah: list[str], env: dict[str, str], image: Image) -> None:
    _run([*buildah, "pull", "--quiet", f"docker-archive:{image.archive}"], env=env)


def _bud(buildah: list[str], env: dict[str, str], image: Image, context: Path, *extra: str) -> None:
    """``buildah bud`` with chroot isolation; every base must already be in the store."""
    bud = ["bud", "--quiet", "--isolation=chroot", "--pull=never", *extra]
    _run([*buildah, *bud, "-t", image.ref, str(context)], env=env)


def _project_context(work: Path) -> Path:
    """Exactly the files the Dockerfile reads (no venv, caches or other clutter)."""
    context = work / "context"
    context.mkdir()
    for rel in PROJECT_CONTEXT:
        source = REPO / rel
        if source.is_dir():
            shutil.copytree(source, context / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / rel)
    return context


def project_images(base: Image, force: bool = False) -> tuple[Image, Image]:
    """The project image (``buildah bud`` of the unchanged Dockerfile, base swapped) and
    the flow image on top of it (the user's recipe from the README: ``FROM headrace``,
    flows in ``/opt/flows``), built in one store so the second needs no re-import."""
    key = _digest(b"project", base.ref.encode(), _tree_bytes(REPO, PROJECT_CONTEXT))
    project = Image(f"localhost/headrace:test-{key}", cache_root() / f"headrace-{key}.tar")
    flows_key = _digest(b"flows", project.ref.encode(), _tree_bytes(FLOWS_DIR, ["."]))
    flows = Image(
        f"localhost/headrace-flows:test-{flows_key}", cache_root() / f"flows-{flows_key}.tar"
    )

    def done() -> bool:
        return project.archive.is_file() and flows.archive.is_file() and not force

    if done():
        return project, flows
    with _locked("headrace"), tempfile.TemporaryDirectory(dir=cache_root()) as tmpdir:
        if done():
            return project, flows
        work = Path(tmpdir)
        with _buildah_store() as buildah:
            env = _buildah_env()
            if project.archive.is_file() and not force:
                _load(buildah, env, project)
            else:
                started = time.monotonic()
                _load(buildah, env, base)
                context = _project_context(work)
                _bud(buildah, env, project, context, "--build-arg", f"PYTHON_BASE={base.ref}")
                tmp = work / "project.tar"
                _run(
                    [*buildah, "push", project.ref, f"docker-archive:{tmp}:{project.ref}"], env=env
                )
                _finish(tmp, project.archive, started, project.ref)
            started = time.monotonic()
            context = work / "flows-context"
            shutil.copytree(
                FLOWS_DIR, context / "flows", ignore=shutil.ignore_patterns("__pycache__")
            )
            (context / "Dockerfile").write_text(f"FROM {project.ref}\nCOPY flows/ /opt/flows/\n")
            _bud(buildah, env, flows, context)
            tmp = work / "flows.tar"
            _run([*buildah, "push", flows.ref, f"docker-archive:{tmp}:{flows.ref}"], env=env)
            _finish(tmp, flows.archive, started, flows.ref)
    return project, flows


@dataclass(frozen=True)
class NodeImages:
    pause: Image
    project: Image
    flows: Image


def _prune_abandoned(max_age: float = 6 * 3600) -> None:
    """Scratch dirs of builds that were killed (a build takes minutes, not hours)."""
    root = cache_root()
    if not root.is_dir():
        return
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith(("tmp", "buildah-")):
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > max_age:
                    shutil.rmtree(path, ignore_errors=True)


def build_all(force: bool = False) -> NodeImages:
    """Every image the real node needs (pause binary from the cluster build)."""
    _prune_abandoned()
    missing = missing_tools()
    if missing:
        raise ImageBuildError(
            f"missing {', '.join(missing)}: apt-get install {' '.join(missing)} "
            "(scripts/setup does this when run as root)"
        )
    pause = pause_image(build.build(quiet=True) / "pause", force)
    project, flows = project_images(base_image(force), force)
    return NodeImages(pause=pause, project=project, flows=flows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    try:
        images = build_all(force=args.force)
    except (ImageBuildError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"image build failed: {exc}", file=sys.stderr)
        return 1
    for image in (images.pause, images.project, images.flows):
        print(f"{image.ref}: {image.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
