"""The page's state vocabulary comes from headrace/states.py: the server hands it over in
/api/config, and the colour table in ui/src/model.ts must cover every name it can send."""

from __future__ import annotations

import re
from pathlib import Path

from headrace.states import FINAL_TYPES, UNSUCCESSFUL_TYPES, StateType
from headrace.ui.server import state_vocabulary

MODEL = Path(__file__).resolve().parents[2] / "ui" / "src" / "model.ts"


def table(name: str) -> set[str]:
    """The keys of `const NAME: Record<string, string> = {...}` in model.ts."""
    source = MODEL.read_text()
    match = re.search(rf"const {name}: Record<string, string> = \{{(.*?)\}};", source, re.S)
    assert match, f"{name} not found in {MODEL}"
    return set(re.findall(r"^\s*(\w+):", match.group(1), re.M))


def test_every_state_name_has_a_colour() -> None:
    vocabulary = dict(state_vocabulary())
    assert {"Failed", "TimedOut", "NotReady", "Cached", "Retrying"} <= vocabulary.keys()
    by_type = table("COLORS")
    by_name = table("NAMED")
    assert by_type == {t.value for t in StateType}, "one colour per state type, no other keys"
    assert by_name <= vocabulary.keys(), "a colour for a state name states.py does not make"
    # A name that is not its type's own (TimedOut is a FAILED state) needs its own colour,
    # else it would be drawn as Failed.
    distinct = {n for n, t in vocabulary.items() if n.upper() != t}
    assert distinct <= by_name, f"no colour for {sorted(distinct - by_name)}"


def test_the_front_end_has_no_list_of_state_names() -> None:
    """Names other than in the colour table would be a second vocabulary to keep in step."""
    names = dict(state_vocabulary())
    for path in MODEL.parent.glob("*.ts"):
        source = path.read_text()
        if path == MODEL:
            source = re.sub(
                r"const NAMED: Record<string, string> = \{.*?\};", "", source, flags=re.S
            )
        quoted = set(re.findall(r'"(\w+)"', source)) & names.keys()
        assert not quoted, f"{path.name} spells state names {sorted(quoted)}"


def ts_set(name: str) -> set[str]:
    """The strings of `export const NAME = new Set([...]);` in model.ts."""
    match = re.search(rf"export const {name} = new Set\(\[(.*?)\]\);", MODEL.read_text(), re.S)
    assert match, f"{name} not found in {MODEL}"
    return set(re.findall(r'"(\w+)"', match.group(1)))


def test_the_front_ends_type_sets_are_states_pys() -> None:
    assert ts_set("FINAL_TYPES") == {t.value for t in FINAL_TYPES}
    assert ts_set("UNSUCCESSFUL_TYPES") == {t.value for t in UNSUCCESSFUL_TYPES}
    assert ts_set("PENDING_TYPES") == {StateType.PENDING.value, StateType.SCHEDULED.value}
    for path in MODEL.parent.glob("*.ts"):
        if path != MODEL:  # no second copy of a type set
            assert not re.search(r'new Set\(\["[A-Z]+"', path.read_text()), path.name
