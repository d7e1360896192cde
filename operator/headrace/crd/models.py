"""FlowRun and Deployment (group headrace.dev, version v1alpha1).

Field descriptions here are what `kubectl explain` shows, so they are written for users.
Extra keys are refused by the generated schema, so a typo in a manifest is rejected by the
API server with the field named, instead of being silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from headrace import settings
from headrace.states import RunState

GROUP = "headrace.dev"
VERSION = "v1alpha1"
# A FlowRun made by `run_deployment` inside a flow: that flow run's id and name (JSON).
PARENT_FLOW_RUN_ANNOTATION = f"{GROUP}/parent-flow-run"
# The `tags` given to `run_deployment` (a JSON list): kept on the FlowRun for people.
TAGS_ANNOTATION = f"{GROUP}/tags"


ENTRYPOINT_PATTERN = r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_]*$"

# FlowRun spec fields that may change after creation; every other one is fixed (CEL).
MUTABLE_RUN_FIELDS = frozenset({"cancel", "timeoutSeconds"})

# Environment names the operator sets itself: a pod override may not replace them. Those of
# blocks and variables (a flow's data, `headrace.blocks`) are the user's to set.
RESERVED_ENV_PREFIX = settings.PREFIX
USER_ENV_PREFIXES = settings.DATA_PREFIXES
_USER_ENV_CEL = " || ".join(f"self.startsWith('{prefix}')" for prefix in USER_ENV_PREFIXES)
# Pod annotations that would loosen the flow pod's confinement (AppArmor, seccomp).
FORBIDDEN_ANNOTATION_PREFIXES = (
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
)
# The longest run the CRD accepts: one year. It keeps deadlines within datetime's range.
MAX_TIMEOUT_SECONDS = 366 * 24 * 3600
# Five fields (minute hour day month weekday) or a macro; croniter's seconds field is refused.
CRON_PATTERN = (
    r"^\s*(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|[^\s]+\s+[^\s]+\s+[^\s]+\s+[^\s]+\s+[^\s]+)\s*$"
)


STORAGE_SECRET_DESCRIPTION = (
    "A Secret in this namespace whose keys become the flow container's environment: the "
    "result storage's credentials, e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
    "AWS_ENDPOINT_URL_S3 for s3://. Its values are never copied into a status."
)


def _cel(rule: str, message: str) -> dict[str, Any]:
    """A CEL rule the API server checks (x-kubernetes-validations), shown in the schema."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


# An RFC 3339 time, as Kubernetes writes them (metav1.Time): `2026-01-01T03:00:00Z`.
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]

CRON_XOR_INTERVAL = (
    "has(self.cron) != has(self.intervalSeconds)",
    "set exactly one of spec.schedule.cron and spec.schedule.intervalSeconds",
)
POLICY_NEEDS_LIMIT = (
    "!has(self.concurrencyPolicy) || self.concurrencyPolicy == 'Allow' "
    "|| has(self.concurrencyLimit)",
    "spec.concurrencyPolicy Queue, Forbid or Replace acts on runs over spec.concurrencyLimit; "
    "set spec.concurrencyLimit (e.g. 1), or remove the policy",
)


def _no_prefix_rule(prefixes: tuple[str, ...]) -> str:
    return "self.all(k, " + " && ".join(f"!k.startsWith('{p}')" for p in prefixes) + ")"


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=False,
    )


class EnvVar(Model):
    name: str = Field(
        min_length=1,
        max_length=256,
        description="Environment variable name (not HEADRACE_*: those are the operator's, "
        "except HEADRACE_BLOCK_* and HEADRACE_VARIABLE_*, a flow's blocks and variables).",
        json_schema_extra=_cel(
            f"!self.startsWith('{RESERVED_ENV_PREFIX}') || {_USER_ENV_CEL}",
            f"{RESERVED_ENV_PREFIX}* variables are set by the operator; use another name "
            "(HEADRACE_BLOCK_* and HEADRACE_VARIABLE_* are yours)",
        ),
    )
    value: str | None = Field(default=None, description="Literal value.")
    value_from: dict[str, Any] | None = Field(
        default=None,
        description="A Kubernetes EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef); "
        "secrets stay in the pod and are never copied into a status.",
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name.startswith(RESERVED_ENV_PREFIX) and not name.startswith(USER_ENV_PREFIXES):
            raise ValueError(
                f"{RESERVED_ENV_PREFIX}* variables are set by the operator "
                "(HEADRACE_BLOCK_* and HEADRACE_VARIABLE_* are yours)"
            )
        return name


# A Kubernetes resource quantity ("250m", "1Gi", "2"), checked by the API server's own
# parser (CEL isQuantity) when the manifest is applied, so a typo is refused naming the field.
Quantity = Annotated[
    str,
    Field(
        max_length=64,
        json_schema_extra=_cel(
            "isQuantity(self)", "must be a Kubernetes quantity, such as 250m, 2 or 1Gi"
        ),
    ),
]
ResourceList = Annotated[dict[str, Quantity], Field(max_length=16)]


class ResourceRequirements(Model):
    limits: ResourceList | None = Field(default=None, description="e.g. {cpu: '1', memory: 1Gi}")
    requests: ResourceList | None = Field(default=None, description="e.g. {cpu: 250m}")


class PodOverrides(Model):
    """What a flow's pod may change from Headrace's secure defaults."""

    service_account_name: str | None = Field(
        default=None,
        description="ServiceAccount the flow pod runs as. Defaults to the chart's flow-runner "
        "account, which has no API rights.",
    )
    automount_service_account_token: bool | None = Field(
        default=None,
        description="Mount the ServiceAccount's API token in the run's pods (default: no "
        "token). For flows that call the Kubernetes API, such as run_deployment: bind the "
        "account only the rights they need.",
    )
    env: list[EnvVar] | None = Field(default=None, description="Extra environment variables.")
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory requests and limits of the flow container."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="Image pull policy of the flow container."
    )
    node_selector: dict[str, str] | None = Field(default=None, description="Pod nodeSelector.")
    tolerations: list[dict[str, Any]] | None = Field(default=None, description="Pod tolerations.")
    labels: dict[str, str] | None = Field(default=None, description="Extra pod labels.")
    annotations: dict[str, str] | None = Field(
        default=None,
        max_length=64,
        description="Extra pod annotations (not AppArmor or seccomp ones: the flow pod's "
        "confinement is fixed).",
        json_schema_extra=_cel(
            _no_prefix_rule(FORBIDDEN_ANNOTATION_PREFIXES),
            "AppArmor and seccomp annotations would loosen the flow pod's confinement; remove them",
        ),
    )
    termination_grace_period_seconds: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="Seconds between SIGTERM and SIGKILL when the run is ended (timeout or "
        "cancel). The engine records the final state and exits within it. Default 30.",
    )

    @field_validator("annotations")
    @classmethod
    def _confinement_kept(cls, annotations: dict[str, str] | None) -> dict[str, str] | None:
        for key in annotations or {}:
            if key.startswith(FORBIDDEN_ANNOTATION_PREFIXES):
                raise ValueError(f"annotation {key!r} would loosen the pod's confinement")
        return annotations


# Bounds of a run's Dask cluster: a manifest is attacker input, so a typo or a hostile value
# cannot ask for a thousand pods.
MAX_DASK_WORKERS = 64
MAX_DASK_THREADS = 64


class DaskSpec(Model):
    """A Dask cluster made for the run: a scheduler pod and worker pods of the flow's image,
    owned by the FlowRun and deleted when the run ends (also on timeout or cancel)."""

    workers: int = Field(
        default=2,
        ge=1,
        le=MAX_DASK_WORKERS,
        description=f"Worker pods (1 to {MAX_DASK_WORKERS}). Default 2.",
    )
    threads_per_worker: int = Field(
        default=1,
        ge=1,
        le=MAX_DASK_THREADS,
        description=f"Threads in each worker (1 to {MAX_DASK_THREADS}). Default 1.",
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="CPU and memory requests and limits of each worker container; a memory "
        "limit also becomes the worker's own memory limit.",
    )


class TaskRunnerSpec(Model):
    """Where the flow's submitted and mapped task runs run. Unset: threads in the flow pod."""

    dask: DaskSpec | None = Field(
        default=None,
        description="On a Dask cluster made for the run: the flow's task_runner becomes a "
        "DaskTaskRunner connected to it (the image needs the headrace[dask] extra, which the "
        "Headrace image has).",
    )


class FlowSpec(Model):
    """The flow to run: an image with the flow's code, and where in it the flow is."""

    image: str = Field(min_length=1, description="Container image holding the flow code.")
    entrypoint: str = Field(
        pattern=ENTRYPOINT_PATTERN,
        description="Where the flow is: 'path/to/file.py:flow_function' or "
        "'package.module:flow_function'.",
    )
    pod: PodOverrides | None = Field(default=None, description="Pod settings for the flow's pods.")


class DeploymentRef(Model):
    name: str = Field(min_length=1, description="Name of a Deployment in the same namespace.")


class FlowRunSpec(Model):
    """One run of a flow: named by a Deployment or carrying its own flow spec."""

    deployment_ref: DeploymentRef | None = Field(
        default=None, description="Run the flow registered by this Deployment. Set this or flow."
    )
    flow: FlowSpec | None = Field(
        default=None, description="Run this flow directly. Set this or deploymentRef."
    )
    parameters: dict[str, Any] | None = Field(
        default=None,
        description="Flow parameters (any JSON). Merged over the Deployment's defaults.",
    )
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TIMEOUT_SECONDS,
        description="End the run TimedOut this many seconds after its attempt's pod was "
        "created: the pod gets SIGTERM, then SIGKILL after its grace period. Each retry "
        "gets the full time again.",
    )
    retries: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="New attempts (new pods) after a Failed or Crashed attempt. Default 0.",
    )
    retry_delay_seconds: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="Delay before the first retry; it doubles for each further retry, up to "
        "one day. Default 5.",
    )
    result_storage: str | None = Field(
        default=None,
        description="fsspec URL where results and the run record are written, e.g. "
        "s3://bucket/headrace. A file:// URL is inside the pod and is lost with it.",
    )
    result_storage_secret: str | None = Field(
        default=None,
        max_length=253,
        description=STORAGE_SECRET_DESCRIPTION,
    )
    cancel: bool | None = Field(
        default=None,
        description="Set to true to end the run Cancelled (SIGTERM, then SIGKILL after grace).",
    )
    task_runner: TaskRunnerSpec | None = Field(
        default=None,
        description="Run the flow's task runs on a Dask cluster made for this run. Overrides "
        "the Deployment's.",
    )


class Condition(Model):
    """Shaped as metav1.Condition: Ready and Succeeded are what `kubectl wait` and GitOps read."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Ready, Succeeded, Reconciling, Stalled (or ResultsKept).",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the condition was set for."
    )
    last_transition_time: Time = Field(description="When the status last changed.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="One CamelCase word for machines.",
    )
    message: str = Field(max_length=32768, description="What happened, for humans.")


# A list of conditions keyed by type, as metav1.Condition lists are (one of each type).
Conditions = Annotated[
    list[Condition],
    Field(
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    ),
]


class Attempt(Model):
    number: int = Field(description="1 for the first attempt.")
    pod_name: str = Field(description="The attempt's pod.")
    state: str = Field(description="The attempt's state.")
    message: str = Field(default="", description="Why the attempt ended as it did.")
    start_time: Time | None = Field(default=None, description="When the pod was created.")
    finish_time: Time | None = Field(default=None, description="When the attempt ended.")
    exit_code: int | None = Field(default=None, description="The flow container's exit code.")


class Progress(Model):
    """Counts only: details of each task run live in the run record, not here."""

    total: int = Field(default=0, description="Task runs created so far.")
    counts: dict[str, int] = Field(default_factory=dict, description="Task runs by state name.")
    running: list[str] = Field(
        default_factory=list, description="Names of up to 20 task runs running now."
    )


class ResolvedSpec(Model):
    """What the run runs, fixed at its first attempt: the FlowRun over its Deployment."""

    flow: FlowSpec = Field(description="Image, entrypoint and pod settings.")
    parameters: dict[str, Any] | None = Field(default=None, description="Merged parameters.")
    retries: int | None = Field(default=None, description="Retries.")
    retry_delay_seconds: int | None = Field(default=None, description="First retry delay.")
    result_storage: str | None = Field(default=None, description="Result storage URL.")
    result_storage_secret: str | None = Field(default=None, description="Its Secret's name.")
    deployment: str | None = Field(default=None, description="The Deployment it came from.")
    deployment_version: str | None = Field(default=None, description="That Deployment's version.")
    timeout_seconds: int | None = Field(
        default=None,
        description="The Deployment's timeout, used when spec.timeoutSeconds is unset.",
    )
    task_runner: TaskRunnerSpec | None = Field(default=None, description="The task runner.")


class DaskStatus(Model):
    """The run's Dask cluster, while it exists."""

    cluster: str = Field(description="Name of the cluster: its pods and Service start with it.")
    scheduler: str | None = Field(default=None, description="The scheduler's address.")
    dashboard_service: str | None = Field(
        default=None, description="The Service in front of the scheduler and its dashboard."
    )
    workers: list[str] | None = Field(default=None, description="The worker pods.")
    kind: Literal["DaskCluster"] | None = Field(
        default=None,
        description="DaskCluster when the dask-kubernetes operator made it (then workerGroup "
        "names its DaskWorkerGroup); unset for the operator's own pods.",
    )
    worker_group: str | None = Field(default=None, description="The DaskWorkerGroup.")
    state: Literal["Starting", "Running", "Deleted"] | None = Field(
        default=None, description="Starting, Running, or Deleted once the run has ended."
    )


class FlowRunStatus(Model):
    state: RunState | None = Field(default=None, description="The run's state.")
    message: str | None = Field(default=None, description="Why the run is in this state.")
    observed_generation: int | None = Field(default=None, description="Generation last acted on.")
    conditions: Conditions | None = Field(default=None, description="Ready and Succeeded.")
    deployment: str | None = Field(default=None, description="The Deployment it came from.")
    start_time: Time | None = Field(default=None, description="When the run started running.")
    completion_time: Time | None = Field(default=None, description="When the run ended.")
    duration: str | None = Field(default=None, description="How long it ran, e.g. '12.3s'.")
    deadline: Time | None = Field(
        default=None, description="When it times out; kept here so an operator restart keeps it."
    )
    attempt: int | None = Field(default=None, description="The current attempt number.")
    attempts: list[Attempt] | None = Field(default=None, description="Every attempt, in order.")
    next_attempt_time: Time | None = Field(default=None, description="When a retry will start.")
    stopping: Literal["Cancelled", "TimedOut"] | None = Field(
        default=None,
        description="Set while the pod is being ended (SIGTERM, then SIGKILL): the state the "
        "run will end in.",
    )
    progress: Progress | None = Field(default=None, description="Task runs by state.")
    result_location: str | None = Field(default=None, description="URI of the flow's result.")
    record_location: str | None = Field(default=None, description="URI of the run record.")
    resolved: ResolvedSpec | None = Field(
        default=None,
        description="The spec the run runs, kept from its first attempt: retries run the same "
        "even if the Deployment changes or is deleted.",
    )
    dask: DaskStatus | None = Field(default=None, description="The run's Dask cluster.")


class Schedule(Model):
    model_config = ConfigDict(json_schema_extra=_cel(*CRON_XOR_INTERVAL))

    cron: str | None = Field(
        default=None,
        max_length=256,
        description="A five-field cron expression (minute hour day month weekday), e.g. "
        "'*/5 * * * *', or a macro such as @hourly.",
        json_schema_extra=_cel(
            f"self.matches(r'{CRON_PATTERN}')",
            "must be five fields (minute hour day month weekday) or a macro such as @hourly; "
            "a seconds field is not supported",
        ),
    )
    timezone: str = Field(default="UTC", description="IANA timezone for cron.")
    interval_seconds: int | None = Field(
        default=None, ge=1, description="Run every this many seconds (instead of cron)."
    )
    starting_deadline_seconds: int | None = Field(
        default=None, ge=0, description="How late a missed run may still start."
    )

    @model_validator(mode="after")
    def _cron_or_interval(self) -> Schedule:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError(CRON_XOR_INTERVAL[1])
        return self


class DeploymentSpec(Model):
    """A flow registered once; FlowRuns are made from it by hand, schedule or CLI."""

    model_config = ConfigDict(json_schema_extra=_cel(*POLICY_NEEDS_LIMIT))

    image: str = Field(min_length=1, description="Container image holding the flow code.")
    entrypoint: str = Field(
        pattern=ENTRYPOINT_PATTERN, description="'path/to/file.py:flow' or 'package.module:flow'."
    )
    pod: PodOverrides | None = Field(default=None, description="Pod settings for its runs.")
    parameters: dict[str, Any] | None = Field(
        default=None, description="Default flow parameters (any JSON)."
    )
    parameter_schema: dict[str, Any] | None = Field(
        default=None, description="JSON schema the merged parameters must satisfy."
    )
    version: str | None = Field(
        default=None, description="Shown to the flow as headrace.runtime.deployment.version."
    )
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT_SECONDS, description="Default run timeout."
    )
    retries: int = Field(default=0, ge=0, le=100, description="Default retries of its runs.")
    result_storage: str | None = Field(default=None, description="Default result storage URL.")
    result_storage_secret: str | None = Field(
        default=None, max_length=253, description=STORAGE_SECRET_DESCRIPTION
    )
    task_runner: TaskRunnerSpec | None = Field(
        default=None, description="Run its flows' task runs on a Dask cluster made per run."
    )
    schedule: Schedule | None = Field(default=None, description="When to create runs.")
    suspend: bool = Field(default=False, description="Pause the schedule.")
    concurrency_limit: int | None = Field(
        default=None, ge=1, description="At most this many runs at once."
    )
    concurrency_policy: Literal["Allow", "Forbid", "Replace", "Queue"] | None = Field(
        default=None, description="What to do with a run over the limit. Default Queue."
    )
    successful_runs_history_limit: int | None = Field(
        default=None, ge=0, description="Completed runs to keep."
    )
    failed_runs_history_limit: int | None = Field(
        default=None, ge=0, description="Unsuccessful runs to keep."
    )

    @model_validator(mode="after")
    def _policy_with_limit(self) -> DeploymentSpec:
        policy = self.concurrency_policy
        if policy is not None and policy != "Allow" and self.concurrency_limit is None:
            raise ValueError(POLICY_NEEDS_LIMIT[1])
        return self


class DeploymentStatus(Model):
    observed_generation: int | None = Field(default=None, description="Generation last acted on.")
    conditions: Conditions | None = Field(
        default=None,
        description="Ready, and Stalled (True for an invalid schedule or parameter schema).",
    )
    runs: dict[str, int] | None = Field(default=None, description="Its FlowRuns by state.")
    last_schedule_time: Time | None = Field(default=None, description="Last scheduled run time.")
    next_schedule_time: Time | None = Field(default=None, description="Next scheduled run time.")


class ObjectMeta(Model):
    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)
    name: str | None = None
    namespace: str | None = None


class FlowRun(Model):
    api_version: str = f"{GROUP}/{VERSION}"
    kind: Literal["FlowRun"] = "FlowRun"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: FlowRunSpec
    status: FlowRunStatus | None = None


class Deployment(Model):
    api_version: str = f"{GROUP}/{VERSION}"
    kind: Literal["Deployment"] = "Deployment"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DeploymentSpec
    status: DeploymentStatus | None = None
