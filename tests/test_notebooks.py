"""Every notebook executed top to bottom on the real data, and its recorded results checked.

The committed notebooks carry their outputs; a fresh execution must record the same results,
otherwise the committed outputs are stale (refresh them with ``make notebooks``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from lastfm_rec.reports import execute_notebook, read_results

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="session")
def executed(real_data_dir, tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Results of a fresh execution of every notebook (full parameters, real data)."""
    out = tmp_path_factory.mktemp("executed")
    return {name: execute_notebook(NOTEBOOKS / name, out, {"data_dir": str(real_data_dir)},
                                   html=False).results
            for name in NOTEBOOK_NAMES}


def _assert_same(fresh: Any, stored: Any, where: str) -> None:
    if isinstance(stored, dict):
        assert isinstance(fresh, dict) and fresh.keys() == stored.keys(), where
        for key in stored:
            _assert_same(fresh[key], stored[key], f"{where}.{key}")
    elif isinstance(stored, list):
        assert isinstance(fresh, list) and len(fresh) == len(stored), where
        for i, (a, b) in enumerate(zip(fresh, stored, strict=True)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(stored, float) and isinstance(fresh, float):
        assert math.isclose(fresh, stored, rel_tol=1e-6, abs_tol=1e-9), where
    else:
        assert fresh == stored, where


def test_every_notebook_records_results(executed) -> None:
    assert NOTEBOOK_NAMES[:2] == ["01_data_analysis.ipynb", "02_preprocessing.ipynb"]
    for name, results in executed.items():
        assert results, f"{name} recorded nothing"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_outputs_are_not_stale(executed, name) -> None:
    stored = read_results(NOTEBOOKS / name)
    assert stored, f"{name} is committed without outputs: run `make notebooks`"
    _assert_same(executed[name], stored, name)


def test_data_analysis_reproduces_the_original_figures(executed) -> None:
    r = executed["01_data_analysis.ipynb"]
    assert r["shapes"] == {"artists": [17632, 4], "tags": [11946, 2],
                           "user_artists": [92834, 3], "user_friends": [25434, 2],
                           "user_tagged": [186479, 6]}
    assert r["missing_picture_urls"] == 444
    assert (r["weight_mean"], r["weight_std"], r["weight_max"]) == (745.244, 3751.322, 352698)
    assert r["weight_quartiles"] == [107, 260, 614]
    assert r["weight_q99"] == 7228.01
    assert (r["rows_removed"], r["trimmed_rows"]) == (929, 91905)
    assert (r["trimmed_weight_mean"], r["trimmed_weight_std"]) == (536.547, 823.351)
    assert (r["trimmed_weight_max"], r["trimmed_users"], r["trimmed_artists"]) == (
        7226, 1891, 17608)
    assert r["w_mm_mean"] == 0.074
    assert (r["dropped_tag_assignments"], r["tag_assignments"]) == (1538, 184941)
    assert r["popularity_top5"] == [
        {"name": "Britney Spears", "popularity_score": 1264.873, "listeners": 522},
        {"name": "Depeche Mode", "popularity_score": 687.795, "listeners": 282},
        {"name": "Lady Gaga", "popularity_score": 682.551, "listeners": 611},
        {"name": "Christina Aguilera", "popularity_score": 559.411, "listeners": 407},
        {"name": "Paramore", "popularity_score": 509.223, "listeners": 399},
    ]


def test_preprocessing_corrects_the_tags(executed) -> None:
    r = executed["02_preprocessing.ipynb"]
    assert (r["n_users"], r["n_artists"], r["n_ratings"]) == (1891, 17608, 91905)
    assert r["top3_tags"]["Lady Gaga"] == "pop / dance / electronic"
    assert r["top3_tags"]["Kanye West"] == "hip-hop / rap / hip hop"
    assert r["top3_tags"]["Carpathian Forest"].startswith("black metal / ")
    assert r["misaligned_share"] > 0.9
    assert r["train_rows"] + r["test_rows"] == 91905
    assert r["test_rows"] == round(0.1 * 91905)
