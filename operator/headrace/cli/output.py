"""`-o json|yaml`: what a command prints for scripts, on stdout, as kubectl prints it."""

from __future__ import annotations

import json
from typing import Any

FORMATS = ("json", "yaml")


def dump(document: Any, form: str) -> str:
    """The document as `form` (json: indented as kubectl's; yaml: block style, keys in
    order)."""
    if form == "json":
        return json.dumps(document, indent=4, default=str)
    if form == "yaml":
        import yaml  # only for -o yaml: the command does not pay its import otherwise

        text: str = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
        return text.rstrip("\n")
    raise ValueError(f"-o {form!r} is not an output format; use one of: {', '.join(FORMATS)}")


def as_list(items: list[Any]) -> dict[str, Any]:
    """Items as kubectl lists them (`kind: List`)."""
    return {"apiVersion": "v1", "kind": "List", "items": items}


def table(rows: list[list[str]]) -> str:
    """Columns padded as kubectl pads them: three spaces apart, the last not padded. Rows
    may be of different lengths (a table artifact's rows are the user's)."""
    widths: list[int] = []
    for row in rows:
        widths.extend(0 for _ in range(len(row) - len(widths)))
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    return "\n".join(
        "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )
