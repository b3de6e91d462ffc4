"""Ranked lists side by side, as the notebooks show them."""

from __future__ import annotations

import pandas as pd

from lastfm_rec.serving.views import side_by_side


def test_side_by_side_puts_ranks_in_rows_and_joins_reasons() -> None:
    original = pd.DataFrame({"name": ["A", "B", "C"], "listeners": [1, 1, 3],
                             "score": [0.9, 0.8, 0.7]})
    ranked = pd.DataFrame({"name": ["D", "E"], "listeners": [500, 40],
                           "because_you_like": [["X", "Y"], ["Z"]]}, index=[7, 3])
    table = side_by_side({"original": original, "hybrid": ranked},
                         ["name", "listeners", "because_you_like"])
    assert list(table.columns) == [("original", "name"), ("original", "listeners"),
                                   ("hybrid", "name"), ("hybrid", "listeners"),
                                   ("hybrid", "because_you_like")]
    assert table.index.tolist() == [1, 2, 3] and table.index.name == "rank"
    assert table[("hybrid", "name")].tolist()[:2] == ["D", "E"]
    assert table[("hybrid", "because_you_like")].tolist()[:2] == ["X, Y", "Z"]
    assert table[("hybrid", "name")].isna().tolist() == [False, False, True]
    assert ("original", "score") not in table.columns  # not asked for
    every = side_by_side({"original": original})
    assert list(every.columns) == [("original", c) for c in original.columns]
