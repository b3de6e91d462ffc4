"""The cross-machine contract for recorded figures: tolerances per kind, tight enough to
catch a stale notebook, and the machine each executed notebook records."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from lastfm_rec.reports import (
    TOLERANCES,
    compare_results,
    describe_machine,
    figure_kind,
    machine_info,
    read_results,
)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _floats(value: Any, path: str = "", keys: tuple = ()):
    """``(dotted path, keys to it, value)`` of every float in a recorded result."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _floats(item, f"{path}.{key}".lstrip("."), (*keys, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _floats(item, f"{path}[{i}]", (*keys, i))
    elif isinstance(value, float):
        yield path, keys, value


def _perturbed(results: dict[str, Any], keys: tuple, value: float) -> dict[str, Any]:
    copy = json.loads(json.dumps(results))
    node: Any = copy
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return copy


def _smallest_caught_change(path: str, value: float) -> float:
    """One unit in the third significant digit of ``value`` (0.4% for list statistics, 0.001
    for spreads over seeds and paired differences, 0.03 for p-values)."""
    if figure_kind(path) == "list statistic":
        return 0.004 * abs(value)
    if figure_kind(path) in ("spread", "paired"):
        return 1e-3
    if figure_kind(path) == "p-value":
        return 0.03
    return 10.0 ** (math.floor(math.log10(abs(value))) - 2)


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_a_stale_figure_is_caught(name) -> None:
    stored = read_results(NOTEBOOKS / name)
    checked = 0
    for path, keys, value in _floats(stored):
        if value == 0.0:
            continue  # no significant digits to move
        for sign in (1, -1):
            moved = _perturbed(stored, keys, value + sign * _smallest_caught_change(path, value))
            assert compare_results(moved, stored), f"{name}: {path} moved unnoticed"
        checked += 1
    assert compare_results(stored, stored) == []
    assert checked or not list(_floats(stored)), name


def test_kinds_of_figures() -> None:
    assert figure_kind("test.als.ndcg@10") == "ranking"
    assert figure_kind("test.als.coverage@10") == "list statistic"
    assert figure_kind("new_users.als.popularity@10") == "list statistic"
    assert figure_kind("spearman.fold-in, dot.listeners") == "correlation"
    assert figure_kind("model1.regularization_loss") == "loss"
    assert figure_kind("model1.test_error_observed") == "loss"
    assert figure_kind("weight_q99") == "exact"
    assert figure_kind("literature.als.ndcg@10 sd") == "spread"
    assert figure_kind("literature_per_seed.als[2]") == "ranking"
    assert figure_kind("significance.als.difference") == "paired"
    assert figure_kind("significance.als.ci_low") == "paired"
    assert figure_kind("significance.als.wilcoxon_p") == "p-value"
    assert figure_kind("significance.als.users") == "exact"
    assert set(TOLERANCES) == {"ranking", "list statistic", "spread", "correlation", "loss",
                               "paired", "p-value", "exact"}


def test_within_tolerance_passes_and_other_values_fail() -> None:
    stored = {"test": {"als": {"ndcg@10": 0.25}}, "n": 3, "names": ["a", "b"]}
    close = {"test": {"als": {"ndcg@10": 0.25 * (1 + TOLERANCES["ranking"].rel / 2)}},
             "n": 3, "names": ["a", "b"]}
    assert compare_results(close, stored) == []
    assert compare_results({**stored, "n": 4}, stored) == ["n: 4 now, 3 recorded"]
    assert compare_results({**stored, "names": ["b", "a"]}, stored)
    assert compare_results({"test": {}, "n": 3, "names": ["a", "b"]}, stored)


def test_machine_info_names_the_cpu_and_blas() -> None:
    machine = machine_info()
    assert machine["cores"] >= 1 and machine["numpy"]
    assert any(pool["internal_api"] for pool in machine["blas"])
    assert str(machine["cpu_model"]) in describe_machine(machine)


def test_ranked_names_may_swap_one_entry_in_five() -> None:
    stored = {"neighbours_als": {"Q": ["Q", "a", "b", "c", "d"]}, "liked": ["x", "y"]}
    one_swap = {"neighbours_als": {"Q": ["Q", "a", "b", "c", "e"]}, "liked": ["x", "y"]}
    two_swaps = {"neighbours_als": {"Q": ["Q", "a", "b", "e", "f"]}, "liked": ["x", "y"]}
    assert compare_results(one_swap, stored) == []
    assert compare_results(two_swaps, stored)
    assert compare_results({**stored, "liked": ["y", "x"]}, stored)  # not a ranked list
