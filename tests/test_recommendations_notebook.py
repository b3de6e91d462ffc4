"""Notebook 04 on synthetic data: every data-specific choice comes from its parameters cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastfm_rec.data import load_dataset
from lastfm_rec.recommend import write_rec_sheet
from lastfm_rec.reports import execute_notebook
from lastfm_rec.service import describe_artists

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_recommendations.ipynb"
pytestmark = pytest.mark.slow


def test_recommendations_notebook_runs_on_synthetic_data(synthetic_dir, tmp_path,
                                                         monkeypatch) -> None:
    monkeypatch.setenv("LASTFM_REC_CACHE", str(tmp_path / "cache"))
    artists = describe_artists(load_dataset(synthetic_dir))
    names = artists.sort_values(["listeners", "name"], ascending=[False, True])["name"].tolist()
    sheet = write_rec_sheet(artists, tmp_path / "mine.csv", n=50, likes=names[:3])
    other = write_rec_sheet(artists, tmp_path / "other.csv", n=50, likes=names[3:8])
    quick = {"data_dir": str(synthetic_dir), "iterations": 50, "rec_sheet": str(sheet),
             "fallback_sheet": str(sheet), "metal_sheet": str(other),
             "neighbour_queries": names[:3], "pop_query": names[0], "map_labels": [names[4]],
             "map_min_listeners": 10, "best_k": 5}
    r = execute_notebook(NOTEBOOK, tmp_path / "out", quick, html=False).results
    assert r["rec_sheet"] == str(sheet) and sorted(r["liked"]) == sorted(names[:3])
    assert sorted(r["metal_liked"]) == sorted(names[3:8])
    for recommended, because, liked in [
            (r["best_recommendations"], r["best_because"], names[:3]),
            (r["metal_recommendations"], r["metal_because"], names[3:8])]:
        assert len(recommended) == len(because) == 5 and not set(recommended) & set(liked)
        assert all(reasons and set(reasons) <= set(liked) for reasons in because)
    assert sorted(r["neighbours_als"]) == sorted(names[:3])
    # Synthetic users listen mostly within one genre: a ranking model groups it.
    shares = r["same_top_tag_share"]
    assert shares["tuned ALS"] > 2 * shares["original model"]
