"""Finding futures inside task parameters and swapping in their results.

Both walks are iterative, so parameters nested far deeper than the recursion limit work, and
both return at once for scalars, the common case on the hot path.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Final, Literal

from headrace.futures import HeadraceFuture
from headrace.states import State
from headrace.utilities.annotations import BaseAnnotation, allow_failure, quote

SCALARS = frozenset({int, float, str, bytes, bool, type(None), complex})
_SCALARS = SCALARS
_CONTAINERS = (list, tuple, set, frozenset, dict)


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
    while stack:
        container = stack.pop()
        for value in container.values() if isinstance(container, dict) else container:
            if type(value) in _SCALARS:
                continue
            if isinstance(value, HeadraceFuture):
                found.append(value)
            elif isinstance(value, _CONTAINERS):
                stack.append(value)
            elif isinstance(value, BaseAnnotation):
                _annotation(value, stack, annotated)
    return found


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
    if isinstance(value, HeadraceFuture):
        return value.state.result()
    if isinstance(value, State):
        return value.result()
    if isinstance(value, BaseAnnotation):
        return _unwrap(value)
    return value


def _leaf_lenient(value: Any) -> Any:
    """An `allow_failure` leaf: a failed run gives its exception as the value (Prefect 2)."""
    if isinstance(value, HeadraceFuture):
        return value.state.result(raise_on_failure=False)
    if isinstance(value, State):
        return value.result(raise_on_failure=False)
    if isinstance(value, BaseAnnotation):
        return _unwrap(value)
    return value


def _unwrap(annotation: BaseAnnotation[Any]) -> Any:
    if isinstance(annotation, quote):
        return annotation.value
    return resolve(
        annotation.value, _leaf_lenient if isinstance(annotation, allow_failure) else _leaf
    )


def _leaf_state(value: Any) -> Any:
    return value.state if isinstance(value, HeadraceFuture) else value


def _rebuild(container: Any, items: list[Any]) -> Any:
    if isinstance(container, dict):
        return type(container)(items) if type(container) is not dict else dict(items)
    if isinstance(container, tuple) and hasattr(container, "_fields"):
        return type(container)(*items)
    return type(container)(items)


def resolve(value: Any, leaf: Callable[[Any], Any] = _leaf) -> Any:
    """`value` with every future or state replaced by its result; unchanged parts are kept.

    `leaf` says what replaces each item that is not a container (`futures_to_states`).
    """
    if type(value) in _SCALARS:
        return value
    if not isinstance(value, _CONTAINERS):
        return leaf(value)
    # Each frame: [container, iterator, new items, changed?, key of the child being built].
    frames: list[list[Any]] = [[value, _iter(value), [], False, None]]
    result: Any = None
    while frames:
        frame = frames[-1]
        container, iterator, items = frame[0], frame[1], frame[2]
        descended = False
        for entry in iterator:
            key, child = entry if isinstance(container, dict) else (None, entry)
            if isinstance(child, _CONTAINERS) and type(child) not in _SCALARS:
                frames.append([child, _iter(child), [], False, None])
                frame[4] = key
                descended = True
                break
            new = leaf(child)
            if new is not child:
                frame[3] = True
            items.append((key, new) if isinstance(container, dict) else new)
        if descended:
            continue
        frames.pop()
        done = _rebuild(container, items) if frame[3] else container
        if not frames:
            result = done
            break
        parent = frames[-1]
        key = parent[4]
        if done is not container:
            parent[3] = True
        parent[2].append((key, done) if isinstance(parent[0], dict) else done)
    return result


def _iter(container: Any) -> Any:
    return iter(container.items()) if isinstance(container, dict) else iter(container)


def futures_to_states(value: Any) -> Any:
    """`value` with every future replaced by its final state (what a flow returns)."""
    return resolve(value, _leaf_state)


def resolve_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Each parameter resolved; a bare future (most upstream inputs) read directly, and a
    plain list of futures and scalars (a fan-in) without the general walk."""
    resolved: dict[str, Any] = {}
    for name, value in parameters.items():
        if type(value) is list:
            value = flat_list(value)
        elif isinstance(value, HeadraceFuture):
            value = value.state.result()
        else:
            value = resolve(value)
        resolved[name] = value
    return resolved


def flat_list(items: list[Any]) -> Any:
    """`resolve(items)` for a list of bare futures and scalars (a new list; the list itself
    when it holds no future), else the general walk."""
    values: list[Any] = []
    append = values.append
    changed = False
    for item in items:
        if type(item) in _SCALARS:
            append(item)
        elif isinstance(item, HeadraceFuture):
            append(item.state.result())
            changed = True
        else:
            return resolve(items)
    return values if changed else items
