"""The `headrace` command's one error handler: a line naming what went wrong, and an exit
code (2: the command or its input is wrong; 1: it could not be carried out), never a
traceback unless `HEADRACE_DEBUG=1`."""

from __future__ import annotations

import json
import sys

from headrace import settings

# Wrong input: a bad flag value, entrypoint, parameter, setting or path.
USAGE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
)


def debugging() -> bool:
    """`HEADRACE_DEBUG=1`: errors show their traceback (a bad value of it counts as off)."""
    try:
        return settings.current().debug
    except ValueError:
        return False


def describe(error: BaseException) -> tuple[str, int]:
    """The one line to print and the exit code for an error that ended a command."""
    cluster = cluster_error(error)
    if cluster is not None:
        return cluster, 1
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(error, SyntaxError):
        where = f"{error.filename}:{error.lineno}" if error.filename else "the flow's code"
        return f"{where}: {error.msg}", 2
    if isinstance(error, ModuleNotFoundError):
        return f"{error} (is it installed where headrace runs?)", 1
    if isinstance(error, PermissionError):  # e.g. refused S3 keys: the keys are the input
        return str(error), 2
    if isinstance(error, USAGE_ERRORS):
        return str(error) or type(error).__name__, 2
    detail = str(error)
    text = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return f"{text} (HEADRACE_DEBUG=1 shows the traceback)", 1


def cluster_error(error: BaseException) -> str | None:
    """One line for a failure to reach or be served by the cluster, as kubectl prints it, not
    a traceback; None for anything else. The kubernetes client is only looked up if a command
    imported it: importing it takes a second that `headrace run` should not pay."""
    exceptions = sys.modules.get("kubernetes.client.exceptions")
    if exceptions is not None and isinstance(error, exceptions.ApiException):
        try:
            detail = json.loads(error.body or "").get("message") or error.reason
        except (ValueError, AttributeError):
            detail = error.reason
        return f"the API server answered {error.status} {error.reason}: {detail}"
    config_errors = sys.modules.get("kubernetes.config.config_exception")
    if config_errors is not None and isinstance(error, config_errors.ConfigException):
        return f"no cluster to talk to: {error} (set KUBECONFIG, or run inside a cluster)"
    urllib3_errors = sys.modules.get("urllib3.exceptions")
    if urllib3_errors is not None and isinstance(error, urllib3_errors.HTTPError):
        reason = getattr(error, "reason", None) or error
        return f"cannot reach the API server: {reason}"
    return None


def report(command: str, error: BaseException) -> int:
    """Print the error's line on stderr and give the exit code; re-raise when debugging."""
    if debugging() and not isinstance(error, KeyboardInterrupt):
        raise error
    message, code = describe(error)
    print(f"headrace {command}: {message}", file=sys.stderr)
    return code
