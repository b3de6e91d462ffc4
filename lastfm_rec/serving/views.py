"""Ranked lists as the notebooks show them: several lists side by side, one row per rank."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


def side_by_side(tables: Mapping[str, pd.DataFrame],
                 columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Ranked tables next to each other, under their labels; row ``r`` holds rank ``r``.

    Parameters
    ----------
    tables
        Label -> a ranked table, best first (e.g. ``recommend_for_likes``, ``artist_neighbors``).
    columns
        The columns to show, those of them each table has (every column when ``None``).
        Cells holding lists (``because_you_like``) are joined with ", ".

    Returns
    -------
    pandas.DataFrame
        Columns ``(label, column)``, index ``rank`` from 1; shorter lists end in blanks.
    """
    shown = {}
    for label, table in tables.items():
        kept = table if columns is None else table[[c for c in columns if c in table.columns]]
        kept = kept.apply(_joined).reset_index(drop=True)
        shown[label] = kept.set_axis(pd.RangeIndex(1, len(kept) + 1, name="rank"))
    return pd.concat(shown, axis=1)


def _joined(column: pd.Series) -> pd.Series:
    if column.map(lambda value: isinstance(value, list | tuple)).any():
        return column.map(lambda value: ", ".join(map(str, value)))
    return column
