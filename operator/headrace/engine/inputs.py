"""Finding futures inside task parameters and swapping in their results.

Both walks are iterative, so parameters nested far deeper than the recursion limit work, and
both return at once for scalars, the common case on the hot path. They go into lists, tuples,
sets, dicts (keys too), dataclass instances and pydantic models, as Prefect 2's
`visit_collection` does, and into subclasses of the built-in containers too.

A task run's inputs are its own, as in Prefect 2: the plain lists, tuples, sets and dicts,
dataclass instances and pydantic models among them (and in upstream results) are made anew at
every depth, so a task that changes a list it was given does not change its caller's, nor
what another run of the same input sees. What Prefect 2 does not walk into (a subclass such
as a defaultdict, a namedtuple, a frozenset, any other object) is passed as it is, unless a
future inside it had to be swapped for its result.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from copy import copy as _shallow_copy
from typing import Any, Final, Literal

from headrace.futures import HeadraceFuture
from headrace.states import State
from headrace.utilities.annotations import BaseAnnotation, allow_failure, quote

SCALARS = frozenset({int, float, str, bytes, bool, type(None), complex})
_SCALARS = SCALARS
_CONTAINERS = (list, tuple, set, frozenset, dict)
_COPIED = frozenset({list, tuple, set, dict, OrderedDict})  # Prefect 2 rebuilds these exactly


class Walk(enum.Enum):
    DEEPER = "deeper"  # `top_level_futures`' answer when some value needs the full walk


DEEPER: Final = Walk.DEEPER


def top_level_futures(values: Any) -> list[HeadraceFuture[Any]] | Literal[Walk.DEEPER] | None:
    """The futures among `values` when each is a scalar or a bare future (None if there are
    none), else DEEPER. Most task calls' parameters: no list made for what is not there."""
    found: list[HeadraceFuture[Any]] | None = None
    for value in values:
        kind = type(value)
        if kind in _SCALARS:
            continue
        if not isinstance(value, HeadraceFuture):
            return DEEPER
        if found is None:
            found = [value]
        else:
            found.append(value)
    return found


def collect_futures(values: Any, annotated: list[Any] | None = None) -> list[HeadraceFuture[Any]]:
    """Every future found in `values` (an iterable of parameter values).

    Futures inside `quote(...)` are skipped; those inside other annotations count, and the
    annotations themselves are appended to `annotated` (rare: the caller then looks closer).
    """
    found: list[HeadraceFuture[Any]] = []
    stack: list[Any] = [values]  # the top level first, then each container found, depth first
    seen: set[int] = set()  # containers already walked: one that holds itself is walked once
    while stack:
        for value in stack.pop():
            if type(value) in _SCALARS:
                continue
            if isinstance(value, HeadraceFuture):
                found.append(value)
            elif isinstance(value, BaseAnnotation):
                _annotation(value, stack, annotated)
            elif _walked(value) and id(value) not in seen:
                seen.add(id(value))
                if isinstance(value, dict):
                    stack.append(value.keys())
                    stack.append(value.values())  # popped first: values before keys
                elif isinstance(value, _CONTAINERS):
                    stack.append(value)
                else:
                    stack.append([field for _, field in record_fields(value)])
    return found


def _walked(value: Any) -> bool:
    """Whether the walks go into `value`: a container or a record (a future never is one)."""
    return isinstance(value, _CONTAINERS) or (
        not isinstance(value, HeadraceFuture) and is_record(value)
    )


def _copied(value: Any) -> bool:
    """Whether a task run gets its own copy of `value`: Prefect 2's `visit_collection` makes
    these anew (exact types, and every record), and walks into nothing else."""
    return type(value) in _COPIED or is_record(value)


def own(value: Any) -> Any:
    """An upstream result as a task run's input: its containers made anew, as in Prefect 2."""
    return value if type(value) in _SCALARS else resolve(value, copy=True)


def _model_base() -> Any:
    """pydantic's `BaseModel` once pydantic is loaded (before that no model can exist, and
    importing it here would cost every flow a fifth of a second)."""
    module = sys.modules.get("pydantic")
    return getattr(module, "BaseModel", None) if module is not None else None


def is_record(value: Any) -> bool:
    """A dataclass instance or a pydantic model: walked field by field, as in Prefect 2."""
    if hasattr(type(value), "__dataclass_fields__"):
        return True
    base = _model_base()
    return base is not None and isinstance(value, base)


def record_fields(record: Any) -> list[tuple[str, Any]]:
    """A record's fields and their values: a dataclass's fields, or a model's fields and the
    extra ones it was given."""
    if hasattr(type(record), "__dataclass_fields__"):
        return [(field.name, getattr(record, field.name)) for field in dataclasses.fields(record)]
    names = [*type(record).model_fields]
    names += [name for name in record.model_fields_set if name not in names]
    return [(name, getattr(record, name)) for name in names if hasattr(record, name)]


def _rebuilt_record(record: Any, items: list[tuple[str, Any]]) -> Any:
    """A new record of the same type from changed field values, made by its own constructor
    (so a dataclass's `__post_init__` and a model's validation see the new values, as in
    Prefect 2); fields the constructor does not take are copied over."""
    kind = type(record)
    values = dict(items)
    if hasattr(kind, "__dataclass_fields__"):
        fields = dataclasses.fields(record)
        made = kind(**{field.name: values[field.name] for field in fields if field.init})
        for field in fields:
            if not field.init:
                object.__setattr__(made, field.name, values[field.name])
        return made
    aliases = {name: info.alias for name, info in kind.model_fields.items() if info.alias}
    made = kind(**{aliases.get(name, name): value for name, value in values.items()})
    private = getattr(record, "__pydantic_private__", None)
    if private:
        object.__setattr__(made, "__pydantic_private__", dict(private))
    # Every field was passed, so all would count as set: keep which ones the caller set, as
    # Prefect 2 does (`model_dump(exclude_unset=True)` gives the same in the task).
    object.__setattr__(made, "__pydantic_fields_set__", set(record.model_fields_set))
    return made


def _annotation(value: BaseAnnotation[Any], stack: list[Any], annotated: list[Any] | None) -> None:
    if annotated is not None:
        annotated.append(value)
    if not isinstance(value, quote):
        stack.append((value.value,))


def allowed_to_fail(annotated: list[Any]) -> frozenset[int]:
    """Ids of the futures wrapped in `allow_failure(...)` among `annotated`."""
    return frozenset(
        id(future)
        for annotation in annotated
        if isinstance(annotation, allow_failure)
        for future in collect_futures((annotation.value,))
    )


def _leaf(value: Any) -> Any:
    """An input's value: a future's or a state's result as the run's own (`own`)."""
    if isinstance(value, HeadraceFuture):
        return own(value.state.result())
    if isinstance(value, State):
        return own(value.result())
    if isinstance(value, BaseAnnotation):
        return _unwrap(value)
    return value


def _leaf_lenient(value: Any) -> Any:
    """An `allow_failure` leaf: a failed run gives its exception as the value (Prefect 2)."""
    if isinstance(value, HeadraceFuture):
        return own(value.state.result(raise_on_failure=False))
    if isinstance(value, State):
        return own(value.result(raise_on_failure=False))
    if isinstance(value, BaseAnnotation):
        return _unwrap(value)
    return value


def _unwrap(annotation: BaseAnnotation[Any]) -> Any:
    if isinstance(annotation, quote):
        return annotation.value
    return resolve(
        annotation.value,
        _leaf_lenient if isinstance(annotation, allow_failure) else _leaf,
        copy=True,  # annotations are unwrapped only in a task run's inputs
    )


def _leaf_state(value: Any) -> Any:
    return value.state if isinstance(value, HeadraceFuture) else value


def _rebuild(container: Any, items: list[Any]) -> Any:
    """`container` again with `items` (dict entries as pairs)."""
    kind = type(container)
    if kind is dict:
        return dict(items)
    if kind is list:
        return items
    if kind is set:
        return set(items)
    if isinstance(container, dict | list | set):
        # A subclass: a copy keeps what it holds besides its items (a defaultdict's factory).
        made = _shallow_copy(container)
        made.clear()
        if isinstance(made, list):
            made.extend(items)
        else:
            made.update(items)
        return made
    if isinstance(container, tuple) and hasattr(container, "_fields"):
        return kind(*items)
    if is_record(container):
        return _rebuilt_record(container, items)
    return kind(items)


def resolve(value: Any, leaf: Callable[[Any], Any] = _leaf, *, copy: bool = False) -> Any:
    """`value` with every future or state replaced by its result; unchanged parts are kept,
    unless `copy`: then what Prefect 2 walks into is made anew (a task run's inputs; `_leaf`
    makes results the run's own).

    `leaf` says what replaces each item that is not a container (`futures_to_states`).
    """
    if type(value) in _SCALARS:
        return value
    if not _walked(value):
        return leaf(value)
    # Each frame: [container, its entries, new items, changed?, key of the child being built,
    # keyed?, copied?]. A keyed container's entries and items are (key, value) pairs. A copied
    # container is made anew even if nothing in it changed, and so are the copied ones in it.
    frames: list[list[Any]] = [_frame(value, copy and _copied(value))]
    walking = {id(value)}  # the containers of the frames: one met again inside itself is kept
    result: Any = None
    while frames:
        frame = frames[-1]
        container, entries, items, keyed, copying = frame[0], frame[1], frame[2], frame[5], frame[6]
        descended = False
        for entry in entries:
            key, child = entry if keyed else (None, entry)
            if keyed and type(key) not in _SCALARS:
                new_key = resolve(key, leaf, copy=copying)  # a future key: its result (Prefect)
                if new_key is not key:
                    key = new_key
                    frame[3] = True
            if type(child) in _SCALARS:
                items.append((key, child) if keyed else child)
                continue
            if _walked(child) and id(child) not in walking:
                walking.add(id(child))
                frames.append(_frame(child, copying and _copied(child)))
                frame[4] = key
                descended = True
                break
            new = leaf(child)
            if new is not child:
                frame[3] = True
            items.append((key, new) if keyed else new)
        if descended:
            continue
        frames.pop()
        walking.discard(id(container))
        if frame[3]:
            done = _rebuild(container, items)
        elif copying:
            done = _copy_of(container, items)
        else:
            done = container
        if not frames:
            result = done
            break
        parent = frames[-1]
        key = parent[4]
        if done is not container:
            parent[3] = True
        parent[2].append((key, done) if parent[5] else done)
    return result


def _copy_of(container: Any, items: list[Any]) -> Any:
    """The run's own copy of an unchanged container; a record whose class cannot make it
    again from its fields (an `InitVar`, a constructor of its own) is passed as it is, where
    Prefect 2 fails the run."""
    try:
        return _rebuild(container, items)
    except Exception:
        if not is_record(container):
            raise
        return container


def _frame(container: Any, copying: bool) -> list[Any]:
    entries: Iterator[Any]
    if isinstance(container, dict):
        entries, keyed = iter(container.items()), True
    elif isinstance(container, _CONTAINERS):
        entries, keyed = iter(container), False
    else:
        entries, keyed = iter(record_fields(container)), True
    return [container, entries, [], False, None, keyed, copying]


def futures_to_states(value: Any) -> Any:
    """`value` with every future replaced by its final state (what a flow returns)."""
    return resolve(value, _leaf_state)


def resolve_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Each parameter as the task run's own input: futures swapped for their results, and
    containers made anew (`resolve(copy=True)`); a bare future (most upstream inputs) read
    directly, and a plain list of futures and scalars (a fan-in) without the general walk."""
    resolved: dict[str, Any] = {}
    for name, value in parameters.items():
        kind = type(value)
        if kind in _SCALARS:
            pass
        elif kind is list:
            value = flat_list(value)
        elif isinstance(value, HeadraceFuture):
            value = own(value.state.result())
        else:
            value = resolve(value, copy=True)
        resolved[name] = value
    return resolved


def flat_list(items: list[Any]) -> Any:
    """`resolve(items, copy=True)` for a list of bare futures and scalars (always a new
    list), else the general walk."""
    values: list[Any] = []
    append = values.append
    for item in items:
        if type(item) in _SCALARS:
            append(item)
        elif isinstance(item, HeadraceFuture):
            result = item.state.result()
            append(result if type(result) in _SCALARS else own(result))
        else:
            return resolve(items, copy=True)
    return values
