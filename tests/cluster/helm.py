"""Build the `helm` CLI from its Go module, the same way the control plane is built.

Helm release tarballs cannot be fetched in CI (only package registries are reachable), so
``helm.sh/helm/v3/cmd/helm`` is compiled with ``go install <pkg>@<version>``: the module's
own go.mod and the checksum database pin every dependency. The binary is cached under
``~/.cache/headrace/helm/<version>-<hash>/helm``, so a second run is a no-op.

Usage: ``python tests/cluster/helm.py [--force] [--print-path]``;
``HEADRACE_HELM=/path/to/helm`` uses an existing binary instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster.build import _build_lock, _go_env, find_go, tool_main

HELM_VERSION = "v3.22.0"
# The Kubernetes minor of the k8s.io/client-go that release requires (v0.37.0 -> 1.37): what
# `helm template` and `helm lint` assume without a cluster, stamped as helm's Makefile does.
K8S_MINOR = "37"
PACKAGE = "helm.sh/helm/v3/cmd/helm"
# Bump when the way the binary is built changes (flags, targets).
RECIPE_VERSION = "1"


def cache_root() -> Path:
    """Root of the helm cache (``HEADRACE_HELM_CACHE`` overrides)."""
    env = os.environ.get("HEADRACE_HELM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "headrace" / "helm"


def ldflags() -> str:
    """Strip symbols; stamp the version `helm version` reports and the default kubeVersion."""
    flags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"]
    for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        flags += [f"-X {package}.k8sVersionMajor=1", f"-X {package}.k8sVersionMinor={K8S_MINOR}"]
    return " ".join(flags)


def binary_path() -> Path:
    """Where the helm binary for the current recipe lives (whether built or not)."""
    override = os.environ.get("HEADRACE_HELM")
    if override:
        return Path(override)
    digest = hashlib.sha256(f"{RECIPE_VERSION}\0{PACKAGE}\0{ldflags()}".encode()).hexdigest()
    return cache_root() / f"{HELM_VERSION}-{digest[:12]}" / "helm"


def build(force: bool = False, quiet: bool = False) -> Path:
    """Build helm into the cache if missing; return the binary's path."""
    target = binary_path()
    if target.is_file() and not force:
        if not quiet:
            print(f"helm {HELM_VERSION} cached at {target}", flush=True)
        return target
    if os.environ.get("HEADRACE_HELM"):
        raise RuntimeError(f"HEADRACE_HELM={target} does not exist")
    with _build_lock(cache_root()):
        if target.is_file() and not force:
            return target
        go = find_go()
        env = _go_env()
        staging = Path(tempfile.mkdtemp(prefix="build-", dir=cache_root()))
        env["GOBIN"] = str(staging)
        cmd = [
            go,
            "install",
            "-p",
            str(os.cpu_count() or 2),
            "-trimpath",
            f"-ldflags={ldflags()}",
            f"{PACKAGE}@{HELM_VERSION}",
        ]
        started = time.monotonic()
        print("+", " ".join(cmd), flush=True)
        try:
            subprocess.run(cmd, env=env, check=True, cwd=staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            (staging / "helm").replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        print(f"helm {HELM_VERSION} built in {time.monotonic() - started:.1f}s: {target}")
        return target


def main(argv: list[str] | None = None) -> int:
    return tool_main(__doc__.splitlines()[0], "helm", binary_path, [build], argv)


if __name__ == "__main__":
    sys.exit(main())
