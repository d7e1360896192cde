# syntax=docker/dockerfile:1
# The Headrace image: `headrace operator` for the chart's Deployment, and the base image
# users build their flows into (FROM headrace:0.1.0, COPY flows/ /opt/flows/).
#
#   docker build -t headrace:0.1.0 .
#
# Both stages use the same pinned Python image, so the virtual environment built in the
# first one (whose interpreter is a link to the base's python3.11) runs in the second.
# PYTHON_BASE swaps that image where the public one cannot be pulled (the tests build a
# Debian-packaged Python 3.11 base: tests/cluster/images.py); keep the default.
ARG PYTHON_BASE=python:3.11.14-slim-bookworm

FROM ${PYTHON_BASE} AS build

# A C compiler for mypyc, in this stage only (the base image has Python's headers). Unpinned:
# Debian's security updates replace these versions, and none of it reaches the final image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

# uv from PyPI, pinned; it installs exactly what uv.lock says.
RUN pip install --no-cache-dir uv==0.13.9

# HATCH_BUILD_HOOK_ENABLE_MYPYC: the task-run hot path compiled with mypyc, the modules
# pyproject.toml's hook lists (`headrace --version` tells which build runs).
ENV UV_PROJECT_ENVIRONMENT=/opt/headrace \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    HATCH_BUILD_HOOK_ENABLE_MYPYC=1

WORKDIR /src
# Dependencies first (a layer that changes only with the lock), then the package itself.
# Extras: s3 (results on S3), dask (DaskTaskRunner, and the `dask scheduler`/`dask worker`
# commands a FlowRun's spec.taskRunner.dask pods run; about 40 MB).
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra s3 --extra dask --no-install-project --no-editable
COPY operator/ operator/
COPY crds/ crds/
RUN uv sync --frozen --no-dev --extra s3 --extra dask --no-editable


FROM ${PYTHON_BASE}

LABEL org.opencontainers.image.title="headrace" \
      org.opencontainers.image.description="Headrace operator and flow engine" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

# uid/gid 65532, as the operator's pod spec and flow pods (podspec.py) expect.
RUN groupadd --system --gid 65532 headrace \
    && useradd --system --uid 65532 --gid 65532 --home-dir /home/headrace --create-home \
       --shell /usr/sbin/nologin headrace

COPY --from=build /opt/headrace /opt/headrace

# Pods run with a read-only root filesystem and an emptyDir on /tmp.
ENV PATH=/opt/headrace/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEADRACE_HOME=/tmp/headrace

WORKDIR /opt/flows
USER 65532:65532

ENTRYPOINT ["headrace"]
CMD ["operator"]
