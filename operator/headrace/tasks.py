"""`@task`: the unit of work a flow submits, maps and retries."""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

from headrace import settings
from headrace.engine import submission
from headrace.engine.context import current_flow_run, hands_back_awaitables
from headrace.engine.hooks import check_hooks
from headrace.exceptions import MappingLengthMismatch, MappingMissingIterable
from headrace.futures import HeadraceFuture
from headrace.logging import enable_log_prints
from headrace.results.serializers import Serializer
from headrace.results.store import ResultStore, names_a_storage_block
from headrace.retries import exponential_backoff as exponential_backoff  # prefect.tasks's
from headrace.retries import resolve_delays, retry_count
from headrace.signature import Signature
from headrace.states import State
from headrace.utilities.annotations import quote, unmapped

if TYPE_CHECKING:
    from headrace.engine.task_run import TaskRun
    from headrace.filesystems import StorageBlock

P = ParamSpec("P")
R = TypeVar("R")

_STATIC_ITERABLES = (str, bytes, bytearray)


class Task(Generic[P, R]):
    """A function the engine runs as a task run: with a state, retries, caching and a result."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        cache_key_fn: Callable[[TaskRun, dict[str, Any]], str | None] | None = None,
        cache_expiration: datetime.timedelta | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | list[float] | Callable[[int], list[float]] = 0,
        persist_result: bool | None = None,
        result_storage: str | StorageBlock | None = None,
        result_serializer: str | Serializer | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        refresh_cache: bool | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        retry_condition_fn: Callable[..., bool] | None = None,
        on_completion: Sequence[Callable[..., Any]] | None = None,
        on_failure: Sequence[Callable[..., Any]] | None = None,
        result_storage_key: str | None = None,
        retry_jitter_factor: float | None = None,
        viz_return_value: Any = None,
        cache_result_in_memory: bool = True,
    ) -> None:
        if not cache_result_in_memory and persist_result is False:
            raise ValueError(
                "cache_result_in_memory=False keeps the result only in result storage: "
                "drop persist_result=False"
            )
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {fn!r}")
        retries = retry_count(retries)
        if cache_key_fn is not None and persist_result is False:
            raise ValueError(
                "a task with cache_key_fn keeps its result to serve later runs: "
                "drop persist_result=False, or drop cache_key_fn"
            )
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        if inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"@task {getattr(fn, '__name__', fn)!r} is an async generator, which Headrace "
                "does not run as a task; collect its items in an async function instead"
            )
        self.fn = fn
        # A generator task returns its items as a list, made inside the attempt, so retries
        # and timeouts cover the generator's body (Prefect 2 also returns the list).
        self._body: Callable[..., Any] = _collected(fn) if inspect.isgeneratorfunction(fn) else fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        self.description = description or inspect.getdoc(fn)
        self.tags = frozenset(tags or ())
        self.version = version
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.retries = retries
        # A callable (`exponential_backoff(10)`) is called with the retries once, as in Prefect 2.
        self.retry_delay_seconds = resolve_delays(retry_delay_seconds, retries)
        self.persist_result = persist_result
        check_storage(result_storage)
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.refresh_cache = bool(refresh_cache)
        self.task_run_name = task_run_name
        self.retry_condition_fn = retry_condition_fn
        self.on_completion = check_hooks("task", "on_completion", on_completion)
        self.on_failure = check_hooks("task", "on_failure", on_failure)
        self.has_hooks = bool(self.on_completion or self.on_failure)
        self.result_storage_key = result_storage_key
        if retry_jitter_factor is not None and retry_jitter_factor < 0:
            raise ValueError(f"retry_jitter_factor must be 0 or more, got {retry_jitter_factor}")
        self.retry_jitter_factor = retry_jitter_factor
        self.viz_return_value = viz_return_value  # kept for Prefect code; no visualize()
        self.cache_result_in_memory = cache_result_in_memory
        self.isasync = inspect.iscoroutinefunction(fn)
        self.signature = Signature(fn)
        self._store: ResultStore | None = None
        self.__doc__ = fn.__doc__
        self.__name__ = self.name
        if log_prints:
            enable_log_prints()

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed."""
        current: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "tags": self.tags,
            "version": self.version,
            "cache_key_fn": self.cache_key_fn,
            "cache_expiration": self.cache_expiration,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "persist_result": self.persist_result,
            "result_storage": self.result_storage,
            "result_serializer": self.result_serializer,
            "timeout_seconds": self.timeout_seconds,
            "log_prints": self.log_prints,
            "refresh_cache": self.refresh_cache,
            "task_run_name": self.task_run_name,
            "retry_condition_fn": self.retry_condition_fn,
            "on_completion": self.on_completion,
            "on_failure": self.on_failure,
            "result_storage_key": self.result_storage_key,
            "retry_jitter_factor": self.retry_jitter_factor,
            "viz_return_value": self.viz_return_value,
            "cache_result_in_memory": self.cache_result_in_memory,
        }
        unknown = set(options) - set(current)
        if unknown:
            raise TypeError(f"with_options() got unknown options: {sorted(unknown)}")
        current.update(options)
        return Task(self.fn, **current)

    def result_store(self) -> ResultStore | None:
        """This task's own store, if it sets result_storage or result_serializer."""
        if self._store is None and (self.result_storage or self.result_serializer):
            self._store = ResultStore(
                storage_location(self.result_storage) or settings.current().result_storage,
                self.result_serializer or "auto",
            )
        return self._store

    def call(self, parameters: dict[str, Any]) -> Any:
        return self.signature.call(self._body, parameters)

    # -- calling ---------------------------------------------------------------------------
    # Overloads, as Prefect 2 types them: the call gives R, `return_state=True` a State[R].
    # PEP 612 allows no keyword beside P.kwargs, so the `return_state`/`wait_for` forms take
    # any arguments; the plain form checks them against the function's parameters.
    @overload
    def __call__(
        self, *args: Any, return_state: Literal[True], wait_for: Any = None, **kwargs: Any
    ) -> State[R]: ...

    @overload
    def __call__(self, *args: Any, wait_for: Iterable[Any], **kwargs: Any) -> R: ...

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run now and return the result (or state, with `return_state=True`).

        Outside a flow the function is simply called.
        """
        return_state = bool(kwargs.pop("return_state", False))
        wait_for = kwargs.pop("wait_for", None)
        flow_run = current_flow_run.get()
        if flow_run is None:
            return self._body(*args, **kwargs)
        parameters = self.signature.bind(args, kwargs)
        return submission.call_task(self, flow_run, parameters, wait_for, return_state)

    @overload
    def submit(  # type: ignore[overload-overlap]  # return_state=True is the only difference
        self, *args: Any, return_state: Literal[True], wait_for: Any = None, **kwargs: Any
    ) -> State[R]: ...

    @overload
    def submit(self, *args: Any, wait_for: Iterable[Any], **kwargs: Any) -> HeadraceFuture[R]: ...

    @overload
    def submit(self, *args: P.args, **kwargs: P.kwargs) -> HeadraceFuture[R]: ...

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        """Start a task run and return its future without waiting."""
        return_state = bool(kwargs.pop("return_state", False)) if kwargs else False
        wait_for = kwargs.pop("wait_for", None) if kwargs else None
        flow_run = current_flow_run.get() or _require_flow_run(self, "submit")  # (it raises)
        parameters = self.signature.bind(args, kwargs)
        return submission.submit_task(self, flow_run, parameters, wait_for, return_state)

    @overload
    def map(self, *args: Any, return_state: Literal[True], **kwargs: Any) -> list[State[R]]: ...

    @overload
    def map(self, *args: Any, **kwargs: Any) -> list[HeadraceFuture[R]]: ...

    def map(self, *args: Any, **kwargs: Any) -> Any:
        """Submit one task run per element of the iterable arguments.

        As in Prefect 2: only arguments actually passed are mapped (a default goes whole to
        every run), values passed through `**kwargs` are mapped too, a dict is mapped over its
        keys, and `unmapped(...)`, strings and non-iterables go to every run whole.
        """
        return_state = bool(kwargs.pop("return_state", False))
        wait_for = kwargs.pop("wait_for", None)
        flow_run = _require_flow_run(self, "map")
        passed, defaults = self.signature.bind_passed(args, kwargs)
        if hands_back_awaitables(self, flow_run) and any(
            isinstance(value, HeadraceFuture) for value in passed.values()
        ):
            # `map` hands back a coroutine here anyway: await upstream futures, not block.
            return _after_futures(
                passed, lambda: self._map_bound(flow_run, passed, defaults, wait_for, return_state)
            )
        return self._map_bound(flow_run, passed, defaults, wait_for, return_state)

    def _map_bound(
        self,
        flow_run: Any,
        passed: dict[str, Any],
        defaults: dict[str, Any],
        wait_for: Any,
        return_state: bool,
    ) -> Any:
        mapped: dict[str, list[Any]] = {}
        static: dict[str, Any] = defaults
        for name, value in passed.items():
            if isinstance(value, HeadraceFuture):
                value = value.result_sync()  # map over what an upstream run returned
            if isinstance(value, quote):
                value = value.value  # mapped over as it is, as in Prefect 2
            if isinstance(value, unmapped):
                static[name] = value.value
            elif isinstance(value, _STATIC_ITERABLES) or not isinstance(value, Iterable):
                static[name] = value
            else:
                mapped[name] = list(value)
        if not mapped:
            raise MappingMissingIterable(
                f"{self.name}.map() got no iterable argument to map over; "
                "pass a list (wrap arguments meant for every run in unmapped(...))"
            )
        lengths = {name: len(values) for name, values in mapped.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{name}={length}" for name, length in lengths.items())
            raise MappingLengthMismatch(
                f"{self.name}.map() got iterables of different lengths ({shown}); "
                "make them equal or wrap the odd ones in unmapped(...)"
            )
        runs = self.signature.per_index(mapped, static, next(iter(lengths.values())))
        return submission.map_task(self, flow_run, runs, wait_for, return_state)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


async def _after_futures(passed: dict[str, Any], then: Callable[[], Any]) -> Any:
    """Swap the futures in `passed` for their results, awaiting them, then call `then`."""
    for name, value in passed.items():
        if isinstance(value, HeadraceFuture):
            await value._wait_async(None)
            passed[name] = value.result_sync()
    handed_back = then()
    return await handed_back if inspect.isawaitable(handed_back) else handed_back


def storage_location(value: str | StorageBlock | None) -> str | None:
    """A `result_storage` as a URL. A file system block names its own; a saved block's slug
    (`"local-file-system/dev"`) is loaded, which needs pydantic, only then."""
    if not value:
        return None
    if isinstance(value, str) and not names_a_storage_block(value):
        return value
    from headrace.filesystems import storage_url  # noqa: PLC0415 (blocks: pydantic)

    return storage_url(value)


def check_storage(value: object) -> None:
    """Refuse, when a flow or task is made, a `result_storage` that can never be one."""
    if value is None or isinstance(value, str) or callable(getattr(value, "storage_url", None)):
        return
    raise TypeError(
        "result_storage must be an fsspec URL or path, a LocalFileSystem or RemoteFileSystem "
        f"block, or a saved one's 'local-file-system/NAME', not {type(value).__name__}"
    )


def _collected(fn: Callable[..., Any]) -> Callable[..., list[Any]]:
    @functools.wraps(fn)
    def collect(*args: Any, **kwargs: Any) -> list[Any]:
        return list(fn(*args, **kwargs))

    return collect


def _require_flow_run(task: Task[Any, Any], method: str) -> Any:
    flow_run = current_flow_run.get()
    if flow_run is None:
        raise RuntimeError(
            f"{task.name}.{method}() was called outside a flow; call it from a @flow function, "
            f"or call {task.name}(...) directly to just run the function"
        )
    return flow_run


@overload
def task(fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(fn: None = None, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Decorate a function as a task: `@task` or `@task(retries=2, ...)`."""
    if fn is None:
        return lambda f: Task(f, **options)
    return Task(fn, **options)


def task_input_hash(context: TaskRun, arguments: dict[str, Any]) -> str | None:
    """A cache key from the task's code and its inputs: same code and inputs, same result."""
    task = context.task
    if task is None:
        return None
    code = getattr(task.fn, "__code__", None)
    try:
        payload = json.dumps(arguments, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None
    digest = hashlib.sha256()
    digest.update(task.name.encode())
    digest.update(code.co_code if code is not None else b"")
    digest.update(payload.encode())
    return digest.hexdigest()
