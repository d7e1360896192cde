"""Every `HEADRACE_*` environment variable, as one typed object: a pod spec is all the
configuration there is.

`current()` reads the environment as it is when a setting is used (cheaply: one variable at a
time), so a variable set after import counts; `check()` reads them all at once. Each field is
the variable `HEADRACE_<FIELD NAME>`; a value that does not parse is a ValueError naming the
variable and what it takes. An empty value counts as unset. The README's table of variables is `readme_table()` (a test keeps them the same).

Typed descriptors on a plain class rather than pydantic-settings (or a dataclass):
`import headrace` stays free of pydantic, which would cost it four times its own import time,
and defining the class costs no code generation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar, cast, overload

from headrace.timestamps import parse_time

PREFIX = "HEADRACE_"
# Variables under these prefixes are a flow's data, not settings: the values of Prefect 2's
# blocks and variables (`headrace.blocks`, `headrace.variables`). No setting is named so, and
# a FlowRun's `pod.env` may set them (from a Secret, say), unlike the rest of `HEADRACE_*`.
BLOCK_PREFIX = "HEADRACE_BLOCK_"
VARIABLE_PREFIX = "HEADRACE_VARIABLE_"
DATA_PREFIXES = (BLOCK_PREFIX, VARIABLE_PREFIX)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


T = TypeVar("T")


class Setting(Generic[T]):
    """One variable: `HEADRACE_<attribute name>`, how it is parsed, its default, its doc.

    Read on a Settings instance, it is the value (the default if the variable was unset); on
    the class, the Setting itself. Settings are read-only.
    """

    def __init__(
        self,
        default: T,
        parse: Callable[[str], T],
        group: str,
        doc: str,
        shown: str | None = None,
        derive: Callable[[Settings], T] | None = None,
    ) -> None:
        self.default = default
        self.parse = parse
        self.group = group
        self.doc = doc
        self.derive = derive  # the default, worked out from other settings
        if shown is None:
            shown = "unset" if default in ("", None, ()) else f"`{default}`"
        self.shown_default = shown
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def env(self) -> str:
        return PREFIX + self.name.upper()

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, instance: Settings, owner: type) -> T: ...
    def __get__(self, instance: Settings | None, owner: type) -> Setting[T] | T:
        if instance is None:
            return self
        values = instance._values
        if self.name in values:
            return cast(T, values[self.name])
        environ = instance._environ
        if environ is not None:
            raw = environ.get(self.env)
            if raw:
                value = self.read(raw)
                values[self.name] = value  # each variable is parsed once per Settings
                return value
        if self.derive is not None:
            return self.derive(instance)
        return self.default

    def read(self, raw: str) -> T:
        """The value of `raw`, or ValueError naming the variable and what it takes."""
        try:
            return self.parse(raw)
        except ValueError as error:
            raise ValueError(f"{self.env}={raw!r} {error} (fix or unset it)") from None

    def __set__(self, instance: Settings, value: T) -> None:
        raise AttributeError(f"settings are read-only: {self.name}")


def _text(value: str) -> str:
    return value


def _boolean(value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError("takes 1 or 0 (also true/false, yes/no)")


def _whole(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError("takes a whole number") from None
    if number < 0:
        raise ValueError("takes a whole number, 0 or more")
    return number


def _positive(value: str) -> int:
    number = _whole(value)
    if number < 1:
        raise ValueError("takes a whole number, 1 or more")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("takes a number of seconds, e.g. 0.5") from None
    if not number >= 0:  # also refuses nan
        raise ValueError("takes a number of seconds, 0 or more")
    return number


def _unix_time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError("takes a Unix time in seconds, e.g. 1767225600.0") from None


def _iso_time(value: str) -> float:
    try:
        return cast(float, parse_time(value))  # never None: the value is not empty
    except ValueError:
        raise ValueError("takes an ISO 8601 time, e.g. 2026-03-01T03:00:00Z") from None


def _path(value: str) -> Path:
    return Path(value).expanduser()


def _words(value: str) -> tuple[str, ...]:
    return tuple(value.split())


def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _sigterm_state(value: str) -> str:
    if value.lower() in {"timedout", "timed_out", "timeout"}:
        return "TimedOut"
    if value.lower() in {"cancelled", "canceled"}:
        return "Cancelled"
    raise ValueError("takes Cancelled or TimedOut")


def _dask_clusters(value: str) -> str:
    if value not in {"pods", "dask-kubernetes"}:
        raise ValueError("takes pods or dask-kubernetes")
    return value


def _level(value: str) -> str:
    level = value.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("takes DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


RUNS = "Runs (local and in flow pods)"
POD = "Flow pods (the operator sets these; not for manifests)"
OPERATOR = "Operator (the Helm chart sets these)"


class Settings:
    """The settings of one process. Field `x` is the variable `HEADRACE_X`."""

    home: Setting[Path] = Setting(
        Path("~/.headrace"),
        _path,
        RUNS,
        "Where local runs keep results and run records.",
        "`~/.headrace`",
        derive=lambda _: Path.home() / ".headrace",
    )
    result_storage: Setting[str] = Setting(
        "",
        _text,
        RUNS,
        "fsspec URL results are written under, unless a flow or task says `result_storage=`.",
        "`$HEADRACE_HOME/results`",
        derive=lambda settings: (settings.home / "results").as_uri(),
    )
    record_storage: Setting[str] = Setting(
        "",
        _text,
        RUNS,
        "fsspec URL under which each top-level run writes `<flow-run-id>/record.jsonl`.",
        "`$HEADRACE_HOME/runs`",
        derive=lambda settings: (settings.home / "runs").as_uri(),
    )
    persist_results: Setting[bool] = Setting(
        False,
        _boolean,
        RUNS,
        "Persist task results when neither the task nor its flow says.",
        "`0`",
    )
    max_workers: Setting[int] = Setting(
        32, _positive, RUNS, "Worker threads of each `ConcurrentTaskRunner` (unless given)."
    )
    record_flush_seconds: Setting[float] = Setting(
        0.5, _seconds, RUNS, "How often a run's record is written while the run goes on."
    )
    gc_tree_factor: Setting[int] = Setting(
        2,
        _whole,
        RUNS,
        "While a top-level flow runs, a full garbage collection waits until this many times "
        "its run tree's objects have been allocated since the last one (`0`: Python's own "
        "thresholds). See docs/benchmarks.md, Engine overhead.",
    )
    logging_level: Setting[str] = Setting(
        "INFO", _level, RUNS, "Level of the run loggers (`get_run_logger()`)."
    )
    debug: Setting[bool] = Setting(
        False,
        _boolean,
        RUNS,
        "`1`: the engine logs its threads, queues and wake-ups, and the `headrace` command "
        "shows tracebacks.",
        "`0`",
    )
    sigterm_state: Setting[str] = Setting(
        "Cancelled",
        _sigterm_state,
        RUNS,
        "The state SIGTERM gives the running flow: `Cancelled` or `TimedOut` (always "
        "`TimedOut` once `HEADRACE_DEADLINE` has passed).",
    )
    flow_run_id: Setting[str] = Setting(
        "", _text, POD, "The top-level flow run's id (the FlowRun's uid).", "a new UUID"
    )
    flow_run_name: Setting[str] = Setting(
        "", _text, POD, "The top-level flow run's name (the FlowRun's).", "a generated name"
    )
    parameters: Setting[str] = Setting("", _text, POD, "The flow's parameters, as one JSON object.")
    termination_message_path: Setting[str] = Setting(
        "", _text, POD, "Where the pod's outcome is written for the operator to read."
    )
    attempt: Setting[int] = Setting(0, _whole, POD, "The attempt's number, from 1.", "unset")
    dask_address: Setting[str] = Setting(
        "", _text, POD, "The Dask scheduler the operator made for the run (spec.taskRunner.dask)."
    )
    deadline: Setting[float | None] = Setting(
        None, _unix_time, POD, "Unix time after which a SIGTERM means `TimedOut`."
    )
    deployment_name: Setting[str] = Setting(
        "", _text, POD, "The Deployment the run was made from (`runtime.deployment.name`)."
    )
    deployment_version: Setting[str] = Setting(
        "", _text, POD, "Its version (`runtime.deployment.version`)."
    )
    scheduled_start_time: Setting[float | None] = Setting(
        None,
        _iso_time,
        POD,
        "ISO 8601 instant the run was scheduled for (`runtime.flow_run.scheduled_start_time`).",
    )
    default_result_storage: Setting[str] = Setting(
        "file:///tmp/headrace",
        _text,
        OPERATOR,
        "Where runs write results and records unless the FlowRun or Deployment says.",
    )
    default_storage_secret: Setting[str] = Setting(
        "",
        _text,
        OPERATOR,
        "A Secret (in each run's namespace) with the default storage's credentials, given "
        "to flow pods that use the default storage.",
    )
    flow_service_account: Setting[str] = Setting(
        "",
        _text,
        OPERATOR,
        "The ServiceAccount flow pods run as unless their spec names one.",
        "the namespace's default",
    )
    engine_command: Setting[tuple[str, ...]] = Setting(
        ("headrace",),
        _words,
        OPERATOR,
        "The program that runs the engine inside flow images (words split on spaces).",
        "`headrace`",
    )
    grace_seconds: Setting[int] = Setting(
        30, _whole, OPERATOR, "Flow pods' termination grace period, unless their spec says."
    )
    retry_delay_seconds: Setting[int] = Setting(
        5, _whole, OPERATOR, "Delay before a retry, unless the FlowRun says (doubles each time)."
    )
    dask_clusters: Setting[str] = Setting(
        "pods",
        _dask_clusters,
        OPERATOR,
        "How a FlowRun's spec.taskRunner.dask cluster is made: `pods` (the operator's own "
        "scheduler and worker pods) or `dask-kubernetes` (a DaskCluster for the "
        "dask-kubernetes operator, which must be installed).",
    )
    start_error_grace_seconds: Setting[float] = Setting(
        300.0,
        _seconds,
        OPERATOR,
        "How long a pod's start error (image pull, container creation) is left to the "
        "kubelet's retries before the attempt ends Crashed.",
    )
    max_api_requests: Setting[int] = Setting(
        24,
        _positive,
        OPERATOR,
        "Requests to the API server in flight at once (the default fits the default "
        "reconciles, plus the half as many workers that only make new runs' pods).",
    )
    max_reconciles: Setting[int] = Setting(
        16,
        _positive,
        OPERATOR,
        "Reconciles at once; half as many more workers only make new runs' pods.",
    )
    progress_interval: Setting[float] = Setting(
        2.0,
        _seconds,
        OPERATOR,
        "Seconds between reads of a running run's progress (more when over 100 runs are live).",
    )
    readable_storage: Setting[tuple[str, ...]] = Setting(
        (),
        _comma_list,
        OPERATOR,
        "Comma-separated URL prefixes the operator may read run records from.",
        "`HEADRACE_DEFAULT_RESULT_STORAGE`",
    )
    storage_read_timeout: Setting[float] = Setting(
        5.0, _seconds, OPERATOR, "Seconds a storage read may take."
    )
    leader_election_namespace: Setting[str] = Setting(
        "", _text, OPERATOR, "Namespace of the leader Lease; empty: no election (one replica)."
    )
    leader_election_lease: Setting[str] = Setting(
        "headrace", _text, OPERATOR, "Name of the leader Lease."
    )
    metrics_port: Setting[int] = Setting(
        0, _whole, OPERATOR, "Port of the Prometheus metrics (`--metrics-port`); 0: off.", "`0`"
    )

    def __init__(self, _environ: Mapping[str, str] | None = None, **values: Any) -> None:
        """Settings with these values (field names); the rest are read from `_environ` when
        first used (if given), else their defaults. Values are taken as given."""
        unknown = set(values) - _VARIABLES.keys()
        if unknown:
            raise TypeError(f"no such setting: {', '.join(sorted(unknown))}")
        self._values: dict[str, Any] = values
        self._environ = _environ

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"Settings({shown})"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every setting `environ` (default: this process's environment) gives, read now;
        ValueError naming each variable that does not parse."""
        environ = os.environ if environ is None else environ
        given: dict[str, Any] = {}
        problems: list[str] = []
        for name, var in _VARIABLES.items():
            raw = environ.get(var.env)
            if raw:
                try:
                    given[name] = var.read(raw)
                except ValueError as error:
                    problems.append(str(error))
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**given)

    def with_changes(self, **changes: Any) -> Settings:
        return Settings(**{**self._values, **changes})

    def sigterm_state_now(self) -> str:
        """The state a SIGTERM gives the running flow now: past the deadline the operator
        ends timed-out pods by signal, so it is TimedOut whatever `sigterm_state` says."""
        if self.deadline is not None and time.time() >= self.deadline:
            return "TimedOut"
        return self.sigterm_state

    @property
    def readable_prefixes(self) -> tuple[str, ...]:
        return self.readable_storage or (self.default_result_storage,)


_VARIABLES: dict[str, Setting[Any]] = {
    name: value for name, value in vars(Settings).items() if isinstance(value, Setting)
}


def block_env_name(type_slug: str, name: str) -> str:
    """The variable holding block `name` of type `type_slug` (both lowercase letters, numbers
    and dashes): `HEADRACE_BLOCK_<TYPE>__<NAME>`, dashes as underscores, so that no two
    blocks share one."""
    return f"{BLOCK_PREFIX}{type_slug.replace('-', '_').upper()}__{name.replace('-', '_').upper()}"


def variable_env_name(name: str) -> str:
    """The variable holding Prefect variable `name` (lowercase letters, numbers, `_`)."""
    return f"{VARIABLE_PREFIX}{name.upper()}"


def env_name(field_name: str) -> str:
    return _VARIABLES[field_name].env


def variables() -> dict[str, Setting[Any]]:
    """Each setting by its field name, in declaration order."""
    return dict(_VARIABLES)


def current() -> Settings:
    """The settings of this process's environment, as it is now: each variable is read and
    parsed when first used (the engine reads one or two per task run). `check()` reads all."""
    return Settings(os.environ)


def check() -> Settings:
    """All the settings, read now; ValueError naming every variable that does not parse."""
    return Settings.from_environ()


def readme_table() -> str:
    """The README's tables of variables (Markdown), one per group."""
    out: list[str] = []
    group = ""
    for var in variables().values():
        if var.group != group:
            group = var.group
            if out:
                out.append("")
            out += [f"{group}:", "", "| Variable | Default | Meaning |", "| --- | --- | --- |"]
        out.append(f"| `{var.env}` | {var.shown_default} | {var.doc} |")
    return "\n".join(out)
