"""Build `kubectl` from the k8s.io/kubectl module, for tests that run README commands.

Release binaries cannot be fetched in CI and Debian's `kubernetes-client` is 1.20, so
kubectl is compiled like the control plane: ``go/kubectl`` is a module of its own (kubectl's
``main`` on ``k8s.io/kubectl`` at the control plane's minor, so its dependencies cannot move
the versions the cluster is built with), cached under
``~/.cache/headrace/kubectl/<version>-<hash>/kubectl``. With the control plane's Go build
cache warm it takes seconds (1.7 s here); then a no-op.

Usage: ``python tests/cluster/kubectl.py [--force] [--print-path]``;
``HEADRACE_KUBECTL=/path/to/kubectl`` uses an existing binary instead.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster.build import GO_MODULE_DIR, cached_go_binary, inputs_digest, tool_main

MODULE_DIR = GO_MODULE_DIR / "kubectl"
HASHED_INPUTS = ("go.mod", "go.sum", "main.go")
# Bump when the way the binary is built changes (flags, targets).
RECIPE_VERSION = "1"


def cache_root() -> Path:
    """Root of the kubectl cache (``HEADRACE_KUBECTL_CACHE`` overrides)."""
    env = os.environ.get("HEADRACE_KUBECTL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "headrace" / "kubectl"


def version() -> str:
    """The k8s.io/kubectl version in go.mod, as the Kubernetes release (v0.36.3 -> v1.36.3)."""
    match = re.search(r"^\s*k8s\.io/kubectl\s+v0\.(\S+)", (MODULE_DIR / "go.mod").read_text(), re.M)
    if not match:
        raise RuntimeError("k8s.io/kubectl is not required in go/kubectl/go.mod")
    return f"v1.{match.group(1)}"


def ldflags() -> str:
    """Strip symbols; stamp the version `kubectl version` reports."""
    release = version()
    major, minor = release.lstrip("v").split(".")[:2]
    stamps = {"gitVersion": release, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{key}={value}" for key, value in stamps.items()]
    return " ".join(flags)


def binary_path() -> Path:
    """Where kubectl for the current inputs lives (whether built or not)."""
    override = os.environ.get("HEADRACE_KUBECTL")
    if override:
        return Path(override)
    digest = inputs_digest(MODULE_DIR, HASHED_INPUTS, RECIPE_VERSION, ldflags())
    return cache_root() / f"{version()}-{digest}" / "kubectl"


def build(force: bool = False, quiet: bool = False) -> Path:
    """Build kubectl into the cache if missing; return the binary's path."""
    return cached_go_binary(
        binary_path(),
        cache=cache_root(),
        module_dir=MODULE_DIR,
        package=".",
        ldflags=ldflags(),
        label=f"kubectl {version()}",
        override_var="HEADRACE_KUBECTL",
        force=force,
        quiet=quiet,
    )


def main(argv: list[str] | None = None) -> int:
    return tool_main(__doc__.splitlines()[0], "kubectl", binary_path, [build], argv)


if __name__ == "__main__":
    sys.exit(main())
