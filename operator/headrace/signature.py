"""A function's parameters, bound as fast as Python allows: used by tasks and flows in the
flow's process, and by the engine on a Dask worker, so it depends on neither."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from headrace.exceptions import ParameterBindError


class Signature:
    """A function's parameters, with a fast path for plain positional-or-keyword functions."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.signature = inspect.signature(fn)
        self.described = f"function {getattr(fn, '__name__', fn)!r}"  # named in bind errors
        params = list(self.signature.parameters.values())
        self.names = [p.name for p in params]
        self.simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
        self.positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        self.has_defaults = any(p.default is not p.empty for p in params)
        self.var_keyword = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)
        # How many positional arguments `bind` maps straight onto the names (-1: never).
        self.arity = len(self.names) if self.simple and self.names == self.positional else -1

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if not kwargs and len(args) == self.arity:
            if len(args) == 1:  # most tasks: no zip object to make and throw away
                return {self.names[0]: args[0]}
            return dict(zip(self.names, args, strict=True))
        bound = self._bound(args, kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def _bound(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        try:
            return self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise ParameterBindError(
                f"{self.described} cannot take these parameters: {error}"
            ) from None

    def bind_passed(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The arguments actually passed (`**kwargs` entries by their own names), and the
        defaults of the rest: what `Task.map` maps over and what it passes whole."""
        bound = self._bound(args, kwargs)
        passed = dict(bound.arguments)
        if self.var_keyword is not None and self.var_keyword in passed:
            passed.update(passed.pop(self.var_keyword))
        bound.apply_defaults()
        defaults = {name: v for name, v in bound.arguments.items() if name not in passed}
        return passed, defaults

    def per_index(
        self, mapped: dict[str, list[Any]], static: dict[str, Any], count: int
    ) -> list[dict[str, Any]]:
        """Each mapped run's parameters, in signature order, `**kwargs` entries folded back."""
        known = set(self.names)
        order = [name for name in self.names if name in mapped or name in static]
        order += [name for name in (*static, *mapped) if name not in known]
        runs = [
            {name: mapped[name][index] if name in mapped else static[name] for name in order}
            for index in range(count)
        ]
        extra = [name for name in order if name not in known]
        if extra and self.var_keyword is not None:
            for parameters in runs:
                folded = parameters.get(self.var_keyword) or {}
                folded = {**folded, **{name: parameters.pop(name) for name in extra}}
                parameters[self.var_keyword] = folded
        return runs

    def call(self, fn: Callable[..., Any], parameters: dict[str, Any]) -> Any:
        if self.simple:
            return fn(**parameters)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        positional = True  # until a parameter is left out, pass them in order by position
        for param in self.signature.parameters.values():
            if param.name not in parameters:
                positional = False
                continue
            value = parameters[param.name]
            if param.kind is param.POSITIONAL_ONLY or (
                positional and param.kind is param.POSITIONAL_OR_KEYWORD
            ):
                # by position: `*args` after it would otherwise clash with it as a keyword
                args.append(value)
            elif param.kind is param.VAR_POSITIONAL:
                args.extend(value)
            elif param.kind is param.VAR_KEYWORD:
                kwargs.update(value)
            else:
                kwargs[param.name] = value
        return fn(*args, **kwargs)
