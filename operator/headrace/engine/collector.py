"""The garbage collector's full passes while top-level flows run.

A full collection visits every live object, and a big flow's run tree (each task run, which is
its own future, and its final state: about three objects a run, alive until the flow ends, by
design) becomes most of them. With Python's default thresholds a 300,000-run flow spent half
its time in 15 full passes that found almost nothing, so the cost per task run grew with the
flow.

While a top-level flow runs, a full pass therefore waits until the objects that survived the
younger passes since the last one number at least `HEADRACE_GC_TREE_FACTOR` (2) times the live
run trees' objects. A flow of a few hundred runs keeps Python's thresholds; a growing tree
never triggers a full pass by itself; and cyclic garbage a full pass would have freed waits
for it at most until it is twice the run trees' size. Younger passes are untouched, and the
threshold in place before is restored when the last flow ends.
"""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING, Any

from headrace import settings

if TYPE_CHECKING:
    from headrace.engine.runs import RunTree

OBJECTS_PER_RUN = 3  # a task run (its own future), its final state, its upstream list

_lock = threading.Lock()
_trees: tuple[RunTree, ...] = ()  # replaced, never changed in place: the callback reads it
_factor = 0
_saved = 0  # the third threshold before the first flow began
_ours = -1  # the third threshold this module set last


def hold(tree: RunTree) -> None:
    """Count `tree` while its top-level flow runs."""
    global _trees, _factor, _saved, _ours
    factor = settings.current().gc_tree_factor
    if factor == 0:
        return
    with _lock:
        if tree in _trees:
            return
        if not _trees:
            _factor = factor
            _saved = _ours = gc.get_threshold()[2]
            gc.callbacks.append(_adjust)
        _trees = (*_trees, tree)


def release(tree: RunTree) -> None:
    """Stop counting `tree`; after the last one, give the collector its threshold back."""
    global _trees, _ours
    with _lock:
        if tree not in _trees:
            return
        _trees = tuple(held for held in _trees if held is not tree)
        if _trees:
            return
        if _adjust in gc.callbacks:
            gc.callbacks.remove(_adjust)
        first, second, third = gc.get_threshold()
        if third == _ours:  # unless the program set its own meanwhile
            gc.set_threshold(first, second, _saved)
        _ours = -1


def _adjust(phase: str, info: dict[str, Any]) -> None:
    """After each collection: the third threshold counts middle passes, each after about
    `first * (second + 1)` surviving allocations; ask for enough of them."""
    global _ours
    if phase != "stop":
        return
    trees = _trees
    if not trees:
        return
    runs = 0
    for tree in trees:
        runs += len(tree.task_runs)
    first, second, third = gc.get_threshold()
    if third != _ours:
        return  # the program set its own threshold meanwhile: it stays
    wanted = max(_saved, _factor * OBJECTS_PER_RUN * runs // (max(first, 1) * (second + 1)))
    if wanted != third:
        gc.set_threshold(first, second, wanted)
        _ours = wanted
