"""`@flow`: a function whose run the engine tracks, times out, records and retries."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

from headrace import settings
from headrace.compat import FLOW_METHODS, refuse_name
from headrace.engine.flow_engine import enter_flow
from headrace.engine.hooks import check_hooks
from headrace.exceptions import ParameterTypeError
from headrace.logging import enable_log_prints
from headrace.results.serializers import Serializer
from headrace.results.store import ResultStore
from headrace.retries import retry_count
from headrace.signature import Signature
from headrace.states import State
from headrace.task_runners import ConcurrentTaskRunner, TaskRunner
from headrace.tasks import check_storage, storage_location

if TYPE_CHECKING:
    from headrace.filesystems import StorageBlock

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Flow(Generic[P, R]):
    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | list[float] = 0,
        task_runner: TaskRunner | type[TaskRunner] | None = None,
        description: str | None = None,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        persist_result: bool | None = None,
        result_storage: str | StorageBlock | None = None,
        result_serializer: str | Serializer | None = None,
        log_prints: bool | None = None,
        tags: Iterable[str] | None = None,
        on_completion: Sequence[Callable[..., Any]] | None = None,
        on_failure: Sequence[Callable[..., Any]] | None = None,
        on_cancellation: Sequence[Callable[..., Any]] | None = None,
        on_crashed: Sequence[Callable[..., Any]] | None = None,
        cache_result_in_memory: bool = True,
    ) -> None:
        if not cache_result_in_memory and persist_result is False:
            raise ValueError(
                "cache_result_in_memory=False keeps the result only in result storage: "
                "drop persist_result=False"
            )
        if not callable(fn):
            raise TypeError(f"@flow needs a function, got {fn!r}")
        retries = retry_count(retries)
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__).replace("_", "-")
        self.version = version
        self.flow_run_name = flow_run_name
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        if isinstance(task_runner, type):
            task_runner = task_runner()
        self.task_runner = task_runner or ConcurrentTaskRunner()
        self.description = description or inspect.getdoc(fn)
        self.timeout_seconds = timeout_seconds
        self.should_validate_parameters = validate_parameters
        self.persist_result = persist_result
        check_storage(result_storage)
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.log_prints = log_prints
        self.tags = frozenset(tags or ())
        self.on_completion = check_hooks("flow", "on_completion", on_completion)
        self.on_failure = check_hooks("flow", "on_failure", on_failure)
        self.on_cancellation = check_hooks("flow", "on_cancellation", on_cancellation)
        self.on_crashed = check_hooks("flow", "on_crashed", on_crashed)
        self.cache_result_in_memory = cache_result_in_memory
        self.isasync = inspect.iscoroutinefunction(fn)
        self.signature = Signature(fn)
        self._adapters: dict[str, Any] | None = None
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        if log_prints:
            enable_log_prints()

    @property
    def persist_tasks_default(self) -> bool:
        return settings.current().persist_results

    def with_options(self, **options: Any) -> Flow[P, R]:
        current: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "flow_run_name": self.flow_run_name,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "task_runner": self.task_runner,
            "description": self.description,
            "timeout_seconds": self.timeout_seconds,
            "validate_parameters": self.should_validate_parameters,
            "persist_result": self.persist_result,
            "result_storage": self.result_storage,
            "result_serializer": self.result_serializer,
            "log_prints": self.log_prints,
            "tags": self.tags,
            "on_completion": self.on_completion,
            "on_failure": self.on_failure,
            "on_cancellation": self.on_cancellation,
            "on_crashed": self.on_crashed,
            "cache_result_in_memory": self.cache_result_in_memory,
        }
        unknown = set(options) - set(current)
        if unknown:
            raise TypeError(f"with_options() got unknown options: {sorted(unknown)}")
        current.update(options)
        return Flow(self.fn, **current)

    def result_store(self) -> ResultStore:
        return ResultStore(
            storage_location(self.result_storage) or settings.current().result_storage,
            self.result_serializer or "auto",
        )

    # -- parameters ------------------------------------------------------------------------
    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        return self.signature.bind(args, kwargs)  # ParameterBindError if they do not fit

    def validate_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Coerce and check parameters against the annotations (pydantic), naming bad fields."""
        if not self.should_validate_parameters:
            return parameters
        adapters = self._type_adapters()
        errors: list[str] = []
        validated: dict[str, Any] = {}
        for name, value in parameters.items():
            adapter = adapters.get(name)
            if adapter is None:
                validated[name] = value
                continue
            try:
                validated[name] = adapter.validate_python(value)
            except Exception as error:
                details = getattr(error, "errors", None)
                if callable(details):
                    for item in details():
                        where = ".".join(str(part) for part in (name, *item.get("loc", ())))
                        errors.append(
                            f"parameter {where!r}: {item.get('msg')} (got {item.get('input')!r})"
                        )
                else:
                    errors.append(f"parameter {name!r}: {error}")
        if errors:
            raise ParameterTypeError(
                f"flow {self.name!r} got invalid parameters: " + "; ".join(errors)
            )
        return validated

    def _type_adapters(self) -> dict[str, Any]:
        if self._adapters is None:
            # pydantic (about 0.2 s to import) loads only for a flow that validates.
            from pydantic import ConfigDict, TypeAdapter  # noqa: PLC0415

            try:
                hints = typing.get_type_hints(self.fn)
            except Exception:
                hints = {}
            # A number for a `str` becomes its text, as under pydantic v1 (Prefect 2): a
            # parameter from YAML or JSON (`version: 1.0`) often comes as a number.
            config = ConfigDict(arbitrary_types_allowed=True, coerce_numbers_to_str=True)
            adapters: dict[str, Any] = {}
            for param in self.signature.signature.parameters.values():
                hint = hints.get(param.name)
                if hint is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    continue
                if _is_union_of_values(hint):
                    hint = _in_order(hint)
                try:
                    adapter = TypeAdapter(hint, config=config)
                    adapters[param.name] = _AsGiven(hint, adapter) if hint in _BARE else adapter
                except Exception:
                    try:
                        adapters[param.name] = TypeAdapter(hint)
                    except Exception:
                        continue  # a type pydantic cannot check is passed through as given
            self._adapters = adapters
        return self._adapters

    # -- calling ---------------------------------------------------------------------------
    # As Prefect 2 types them: the call gives R, `return_state=True` a State (awaited, for an
    # async flow). PEP 612 allows no keyword beside P.kwargs, so that form takes any arguments.
    @overload
    def __call__(
        self: Flow[P, Coroutine[Any, Any, T]],
        *args: Any,
        return_state: Literal[True],
        **kwargs: Any,
    ) -> Coroutine[Any, Any, State[T]]: ...

    @overload
    def __call__(self, *args: Any, return_state: Literal[True], **kwargs: Any) -> State[R]: ...

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the flow. An async flow returns a coroutine, unless called from a sync flow."""
        return_state = bool(kwargs.pop("return_state", False))
        return enter_flow(self, args, kwargs, return_state)

    def __getattr__(self, name: str) -> Any:
        refused = refuse_name("Flow", name, FLOW_METHODS)
        if refused is not None:
            raise refused
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


_BARE = frozenset({list, dict, set, frozenset, tuple})  # annotations with no item types


def _is_union_of_values(hint: Any) -> bool:
    """A Union of two or more types besides None (pydantic has no union mode for `X | None`)."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return False
    return sum(1 for member in typing.get_args(hint) if member is not type(None)) > 1


def _in_order(union: Any) -> Any:
    """pydantic v1 (Prefect 2) took a Union's first member that fits, where v2 looks for the
    best one: with this, `int | str` given "5" is 5 here as in Prefect."""
    from pydantic import Field  # noqa: PLC0415  # loaded with the adapters, not on import

    return typing.Annotated[union, Field(union_mode="left_to_right")]


class _AsGiven:
    """A bare `list`, `dict`, `set`, `frozenset` or `tuple` parameter takes an instance of
    its type as it is, so the flow and its caller share it, as under Prefect 2 (pydantic v1);
    pydantic v2 would hand the flow a copy. Anything else is validated (a tuple for a list
    becomes a list)."""

    __slots__ = ("adapter", "kind")

    def __init__(self, kind: type, adapter: Any) -> None:
        self.kind = kind
        self.adapter = adapter

    def validate_python(self, value: Any) -> Any:
        return value if isinstance(value, self.kind) else self.adapter.validate_python(value)


@overload
def flow(fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(fn: None = None, **options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Decorate a function as a flow: `@flow` or `@flow(timeout_seconds=60, ...)`."""
    if fn is None:
        return lambda f: Flow(f, **options)
    return Flow(fn, **options)
