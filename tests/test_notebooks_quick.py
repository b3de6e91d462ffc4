"""Quick tier: every notebook executed on the synthetic data set with small parameters.

Runs without the real data (no ``realdata`` mark), so ``make test`` always executes every
notebook; ``tests/test_notebooks.py`` is the real-data tier that checks the figures. A
notebook added to ``notebooks/`` is covered by the glob; give it an entry in :data:`QUICK`
(every data-specific choice, artist names too, must be a parameter for this to work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lastfm_rec import load_dataset
from lastfm_rec.data.sheets import write_rec_sheet
from lastfm_rec.reports import SEPARATE, execute_notebook
from lastfm_rec.serving.session import describe_artists

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# Notebooks kept out of `make run` (reports.SEPARATE: 06 needs the Spark extra) have their
# quick run beside their other tests (tests/test_spark.py).
NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if p.name not in SEPARATE)
# Artists of the synthetic data (lastfm_rec.data.synthetic names its two most popular so).
SYNTHETIC_ARTISTS = ["Beyoncé Tribute", '"Weird" Ensemble']


class Artist(int):
    """A placeholder for the synthetic artist of this rank (by listeners, then name)."""


class Sheet(str):
    """A placeholder for a rec sheet liking the synthetic artists ranked in ``slice``."""


#: Small parameters per notebook (by its number); ``data_dir`` is always the synthetic data.
QUICK: dict[str, dict[str, Any]] = {
    "01": {},
    "02": {"tag_examples": SYNTHETIC_ARTISTS},
    "03": {"embedding_dim": 3, "iterations": 30, "als_sweeps": 2},
    "04": {"iterations": 50, "rec_sheet": Sheet("0:3"), "fallback_sheet": Sheet("0:3"),
           "metal_sheet": Sheet("3:8"), "neighbour_queries": [Artist(0), Artist(1), Artist(2)],
           "pop_query": Artist(0), "map_labels": [Artist(4)], "map_min_listeners": 10,
           "best_k": 5},
    "05": {},
}


@pytest.fixture(scope="module")
def synthetic_names(synthetic_dir: Path) -> list[str]:
    artists = describe_artists(load_dataset(synthetic_dir))
    return artists.sort_values(["listeners", "name"], ascending=[False, True])["name"].tolist()


def _fill(value: Any, names: list[str], sheets: Path, data_dir: Path) -> Any:
    if isinstance(value, list):
        return [_fill(v, names, sheets, data_dir) for v in value]
    if isinstance(value, Artist):
        return names[value]
    if isinstance(value, Sheet):
        start, stop = (int(x) for x in value.split(":"))
        path = sheets / f"likes_{start}_{stop}.csv"
        if not path.exists():
            artists = describe_artists(load_dataset(data_dir))
            write_rec_sheet(artists, path, n=50, likes=names[start:stop])
        return str(path)
    return value


@pytest.fixture(scope="module")
def quick_results(synthetic_dir: Path, synthetic_names: list[str],
                  tmp_path_factory: pytest.TempPathFactory):
    """Execute a notebook once with its quick parameters: ``(parameters, results, folder)``."""
    done: dict[str, tuple[dict[str, Any], dict[str, Any], Path]] = {}
    sheets = tmp_path_factory.mktemp("sheets")

    def run(name: str) -> tuple[dict[str, Any], dict[str, Any], Path]:
        if name not in done:
            assert name[:2] in QUICK, f"add quick parameters for {name} to QUICK"
            parameters = {"data_dir": str(synthetic_dir), **{
                key: _fill(value, synthetic_names, sheets, synthetic_dir)
                for key, value in QUICK[name[:2]].items()}}
            out = tmp_path_factory.mktemp(name[:2])
            results = execute_notebook(NOTEBOOKS / name, out, parameters, html=False).results
            done[name] = parameters, results, out
        return done[name]

    return run


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LASTFM_REC_CACHE", str(tmp_path_factory.getbasetemp() / "quick-cache"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_on_synthetic_data(name: str, quick_results) -> None:
    parameters, results, out = quick_results(name)
    assert results, f"{name} recorded nothing"
    for key in parameters.keys() & results.keys():  # parameters it records took effect
        assert results[key] == parameters[key], key
    assert (out / name).is_file()


@pytest.mark.slow
def test_recommendations_notebook_takes_every_choice_from_parameters(
        quick_results, synthetic_names: list[str]) -> None:
    _, r, _ = quick_results("04_recommendations.ipynb")
    names = synthetic_names
    assert sorted(r["liked"]) == sorted(names[:3])
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


def test_every_notebook_has_quick_parameters() -> None:
    assert NOTEBOOK_NAMES, "no notebooks found"
    assert {name[:2] for name in NOTEBOOK_NAMES} <= QUICK.keys()
