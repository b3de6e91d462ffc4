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

from lastfm_rec import load_dataset, prepare
from lastfm_rec.recommend import write_rec_sheet
from lastfm_rec.reports import execute_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
# Artists of the synthetic data (lastfm_rec.synthetic names its two most popular so).
SYNTHETIC_ARTISTS = ["Beyoncé Tribute", '"Weird" Ensemble']
SHEET = "{sheet}"  # replaced by a rec sheet of synthetic artists with three likes

#: Small parameters per notebook (by its number); ``data_dir`` is always the synthetic data.
QUICK: dict[str, dict[str, Any]] = {
    "01": {},
    "02": {"tag_examples": SYNTHETIC_ARTISTS},
    "03": {"embedding_dim": 3, "iterations": 30, "als_sweeps": 2},
    "04": {"embedding_dim": 3, "iterations": 30, "rec_sheet": SHEET, "fallback_sheet": SHEET,
           "k": 3, "neighbour_queries": SYNTHETIC_ARTISTS},
    "05": {},
    "06": {},
}
#: Notebooks that cannot run on synthetic data yet, and what they need.
NOT_YET = {
    "04": "needs its neighbour_queries and the popularity-bias query artist ('Justin "
          "Bieber') in its parameters cell",
}


def _cases() -> list[Any]:
    cases = []
    for name in NOTEBOOK_NAMES:
        reason = NOT_YET.get(name[:2])
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        cases.append(pytest.param(name, marks=marks, id=name))
    return cases


@pytest.fixture(scope="module")
def sheet(synthetic_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    artists = prepare(load_dataset(synthetic_dir)).artists
    likes = artists.sort_values("listeners", ascending=False)["name"].head(3).tolist()
    return write_rec_sheet(artists, tmp_path_factory.mktemp("sheet") / "likes.csv", n=30,
                           likes=likes)


def quick_parameters(name: str, data_dir: Path, sheet: Path) -> dict[str, Any]:
    """The notebook's :data:`QUICK` entry, with the data folder and rec sheet filled in."""
    assert name[:2] in QUICK, f"add quick parameters for {name} to QUICK"
    return {"data_dir": str(data_dir),
            **{key: str(sheet) if value == SHEET else value
               for key, value in QUICK[name[:2]].items()}}


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases())
def test_notebook_runs_on_synthetic_data(name: str, synthetic_dir: Path, sheet: Path,
                                         tmp_path: Path) -> None:
    parameters = quick_parameters(name, synthetic_dir, sheet)
    results = execute_notebook(NOTEBOOKS / name, tmp_path, parameters, html=False).results
    assert results, f"{name} recorded nothing"
    for key in parameters.keys() & results.keys():  # parameters it records took effect
        assert results[key] == parameters[key], key
    assert (tmp_path / name).is_file()


def test_every_notebook_has_quick_parameters() -> None:
    assert NOTEBOOK_NAMES, "no notebooks found"
    assert {name[:2] for name in NOTEBOOK_NAMES} <= QUICK.keys()
