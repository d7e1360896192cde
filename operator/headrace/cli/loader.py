"""Loading a flow from an entrypoint: `path/to/file.py:flow_name` or `package.module:flow_name`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from headrace.flows import Flow


class EntrypointError(ValueError):
    pass


def load_flow(entrypoint: str) -> Flow[Any, Any]:
    if ":" not in entrypoint:
        raise EntrypointError(
            f"entrypoint {entrypoint!r} names no flow; write it as FILE.py:FLOW or module:FLOW"
        )
    location, _, attribute = entrypoint.rpartition(":")
    if location.endswith(".py") or "/" in location:
        path = Path(location).expanduser().resolve()
        if not path.exists():
            raise EntrypointError(f"entrypoint file {location!r} does not exist")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise EntrypointError(f"cannot import {location!r} as a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        sys.path.insert(0, str(path.parent))  # the flow's own sibling modules import as usual
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(location)
        except ImportError as error:
            raise EntrypointError(f"cannot import module {location!r}: {error}") from error
    try:
        found = getattr(module, attribute)
    except AttributeError:
        flows = sorted(name for name, value in vars(module).items() if isinstance(value, Flow))
        hint = f"; flows there: {', '.join(flows)}" if flows else "; it defines no @flow"
        raise EntrypointError(f"{location!r} has no attribute {attribute!r}{hint}") from None
    if not isinstance(found, Flow):
        raise EntrypointError(f"{entrypoint!r} is not a @flow (it is {type(found).__name__})")
    return found
