"""Build the test cluster binaries: the control plane (etcd, kube-apiserver,
kube-controller-manager), the real node (kubelet, kube-scheduler, the pause program)
and the node's CNI plugins.

Only Go modules can be fetched in CI (no release tarballs, no containers), so the
binaries are compiled from the pinned modules in ``tests/cluster/go`` (kubernetes)
and ``tests/cluster/go/cni`` (containernetworking/plugins, a module of its own so
that its dependencies cannot change the versions kubernetes is built with). Output
goes to a cache outside the repository, keyed by version and a hash of the build
inputs, so a second run is a no-op.

Usage: ``python tests/cluster/build.py [--force] [--print-bin-dir]``
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

GO_MODULE_DIR = Path(__file__).resolve().parent / "go"
# Inputs whose content defines the build; any change produces a new cache key.
HASHED_INPUTS = ("go.mod", "go.sum", "tools.go", "cmd/etcd/main.go", "cmd/pause/main.go")
# Bump when the way binaries are built changes (flags, targets).
RECIPE_VERSION = "2"
BINARIES: dict[str, str] = {
    "etcd": "./cmd/etcd",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    # The real node (node.py): kubelet, the scheduler it needs, and the sandbox program.
    "kubelet": "k8s.io/kubernetes/cmd/kubelet",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "pause": "./cmd/pause",
}
CNI_MODULE_DIR = GO_MODULE_DIR / "cni"
CNI_HASHED_INPUTS = ("go.mod", "go.sum", "tools.go")
CNI_RECIPE_VERSION = "1"
CNI_PLUGINS: dict[str, str] = {
    name: f"github.com/containernetworking/plugins/plugins/{path}"
    for name, path in (
        ("bridge", "main/bridge"),
        ("host-local", "ipam/host-local"),
        ("loopback", "main/loopback"),
        ("portmap", "meta/portmap"),
    )
}


def cache_root() -> Path:
    """Root of the binary cache (``HEADRACE_CLUSTER_CACHE`` overrides)."""
    env = os.environ.get("HEADRACE_CLUSTER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "headrace" / "cluster"


def kubernetes_version() -> str:
    """The k8s.io/kubernetes version pinned in go.mod, e.g. ``v1.36.3``."""
    text = (GO_MODULE_DIR / "go.mod").read_text()
    match = re.search(r"^\s*k8s\.io/kubernetes\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise RuntimeError("k8s.io/kubernetes is not required in tests/cluster/go/go.mod")
    return match.group(1)


def ldflags(version: str) -> str:
    """Strip symbols and stamp the version that /version and kubectl report."""
    major, minor = version.lstrip("v").split(".")[:2]
    stamps = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{key}={value}" for key, value in stamps.items()]
    return " ".join(flags)


def build_key() -> str:
    """``<k8s-version>-<hash>``: the cache directory name for the current inputs."""
    version = kubernetes_version()
    digest = hashlib.sha256(RECIPE_VERSION.encode())
    for name in HASHED_INPUTS:
        digest.update(name.encode() + b"\0" + (GO_MODULE_DIR / name).read_bytes() + b"\0")
    digest.update(ldflags(version).encode())
    return f"{version}-{digest.hexdigest()[:12]}"


def cni_version() -> str:
    """The containernetworking/plugins version pinned in go/cni/go.mod."""
    text = (CNI_MODULE_DIR / "go.mod").read_text()
    match = re.search(
        r"^\s*(?:require\s+)?github\.com/containernetworking/plugins\s+(v\S+)", text, re.M
    )
    if not match:
        raise RuntimeError("containernetworking/plugins is not required in go/cni/go.mod")
    return match.group(1)


def cni_bin_dir() -> Path:
    """Where the CNI plugins for the current inputs live (whether built or not)."""
    digest = hashlib.sha256(CNI_RECIPE_VERSION.encode())
    for name in CNI_HASHED_INPUTS:
        digest.update(name.encode() + b"\0" + (CNI_MODULE_DIR / name).read_bytes() + b"\0")
    return cache_root() / f"cni-{cni_version()}-{digest.hexdigest()[:12]}" / "bin"


def bin_dir() -> Path:
    """Where the binaries for the current inputs live (whether built or not)."""
    return cache_root() / build_key() / "bin"


def is_built(directory: Path | None = None, names: Iterable[str] = BINARIES) -> bool:
    directory = directory or bin_dir()
    return all((directory / name).is_file() for name in names)


def find_go() -> str:
    """Locate the Go toolchain (``HEADRACE_GO`` overrides, then PATH, then /usr/local/go)."""
    for candidate in (os.environ.get("HEADRACE_GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError("Go toolchain not found: install Go >= 1.26 or set HEADRACE_GO")


def inputs_digest(module_dir: Path, names: Iterable[str], recipe: str, flags: str = "") -> str:
    """Short hash of a Go build module's files, recipe version and ldflags: a cache key.

    For binaries built by other scripts from their own modules (``s3.py``'s SeaweedFS).
    """
    digest = hashlib.sha256(recipe.encode())
    for name in names:
        digest.update(name.encode() + b"\0" + (module_dir / name).read_bytes() + b"\0")
    digest.update(flags.encode())
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """Serialize concurrent builds (parallel pytest sessions, CI + developer)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")  # never download another toolchain
    env.setdefault("GOFLAGS", "-mod=readonly")  # go.sum is committed and complete
    env.setdefault("CGO_ENABLED", "0")  # static binaries, no C toolchain needed
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path = GO_MODULE_DIR) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def _build_into(
    target: Path, module_dir: Path, binaries: dict[str, str], ldflag: str, what: str
) -> None:
    """``go build`` every binary into a staging dir, then move it to ``target`` at once."""
    go = find_go()
    env = _go_env()
    jobs = str(os.cpu_count() or 2)
    started = time.monotonic()
    _run([go, "version"], env, module_dir)
    _run([go, "mod", "download"], env, module_dir)
    print(f"go mod download: {time.monotonic() - started:.1f}s", flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent.parent))
    try:
        flags = ["-p", jobs, "-trimpath", f"-ldflags={ldflag}"]
        for name, package in binaries.items():
            step = time.monotonic()
            _run([go, "build", *flags, "-o", str(staging / name), package], env, module_dir)
            print(f"built {name}: {time.monotonic() - step:.1f}s", flush=True)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{what} built in {time.monotonic() - started:.1f}s: {target}", flush=True)


def cached_go_binary(
    target: Path,
    *,
    cache: Path,
    module_dir: Path,
    package: str,
    ldflags: str,
    label: str,
    override_var: str,
    force: bool = False,
    quiet: bool = False,
) -> Path:
    """The tool at `target`, built from `package` of `module_dir` if missing (under the
    cache's lock, so parallel test runs build it once). A missing file named by
    `override_var` is an error, never a reason to build."""
    if target.is_file() and not force:
        if not quiet:
            print(f"{label} cached at {target}", flush=True)
        return target
    if os.environ.get(override_var):
        raise RuntimeError(f"{override_var}={target} does not exist")
    with _build_lock(cache):
        if force or not target.is_file():
            _build_into(target.parent, module_dir, {target.name: package}, ldflags, label)
    return target


def tool_main(
    description: str,
    name: str,
    binary_path: Callable[[], Path],
    builds: Iterable[Callable[..., Path]],
    argv: list[str] | None = None,
) -> int:
    """The command line of a cached tool build: build (or --force), or --print-path."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--print-path", action="store_true", help="only print the binary path")
    args = parser.parse_args(argv)
    if args.print_path:
        print(binary_path())
        return 0
    try:
        for build_one in builds:
            build_one(force=args.force)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"{name} build failed: {exc}", file=sys.stderr)
        return 1
    return 0


def build(force: bool = False, quiet: bool = False) -> Path:
    """Build the cluster binaries into the cache if missing; return the bin directory."""
    target = bin_dir()
    if is_built(target) and not force:
        if not quiet:
            print(f"cluster binaries cached in {target}", flush=True)
        return target
    with _build_lock(cache_root()):
        if not is_built(target) or force:
            _build_into(
                target, GO_MODULE_DIR, BINARIES, ldflags(kubernetes_version()), "cluster binaries"
            )
    return target


def build_cni(force: bool = False, quiet: bool = False) -> Path:
    """Build the CNI plugins into the cache if missing; return their directory."""
    target = cni_bin_dir()
    if is_built(target, CNI_PLUGINS) and not force:
        if not quiet:
            print(f"CNI plugins cached in {target}", flush=True)
        return target
    with _build_lock(cache_root()):
        if not is_built(target, CNI_PLUGINS) or force:
            _build_into(target, CNI_MODULE_DIR, CNI_PLUGINS, "-s -w", "CNI plugins")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument(
        "--print-bin-dir", action="store_true", help="only print the bin directory and exit"
    )
    args = parser.parse_args(argv)
    if args.print_bin_dir:
        print(bin_dir())
        return 0
    try:
        build(force=args.force)
        build_cni(force=args.force)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
