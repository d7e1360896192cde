"""Prefect 2's blocks, read from the environment: `Secret.load("db-password").get()` works.

Prefect keeps blocks on its API server. Headrace has none, and on Kubernetes a secret belongs in
a Secret, so a block's value is the environment variable `HEADRACE_BLOCK_<TYPE>__<NAME>`
(`HEADRACE_BLOCK_SECRET__DB_PASSWORD` for the Secret block `db-password`). A FlowRun or
Deployment sets it in `pod.env` with `valueFrom.secretKeyRef`, which the admission policy lets
only someone who may read that Secret write; locally, export it. The value stays in the pod.
"""

from __future__ import annotations

from headrace.blocks.core import Block

__all__ = ["Block"]
