"""Quick tier: every notebook executed on the synthetic data set with small parameters.

Runs without the real data (no ``realdata`` mark), so ``make test`` always executes every
notebook; ``tests/test_notebooks.py`` is the real-data tier that checks the figures. A
notebook added to ``notebooks/`` is covered by the glob; give it an entry in
``notebook_runs.QUICK``. The runs are the session's shared ones (``notebook_runs``).

A notebook whose quick parameters are only the data (01, 05, 06) runs the very cells and
settings of its full run: where the real data is present, that full run (already executed by
the real-data tier) is the one checked here, rather than a second execution on synthetic data.
"""

from __future__ import annotations

import pytest
from notebook_runs import FULL, MAKE_RUN, QUICK, QUICK_RUN, quick_stands_for_itself


def kind(name: str) -> str:
    """The run this tier checks for ``name`` (see the module docstring)."""
    return QUICK_RUN if quick_stands_for_itself(name) else FULL


def case(name: str):
    return pytest.param(name, marks=pytest.mark.notebook(kind(name), name))


@pytest.mark.slow
@pytest.mark.parametrize("name", [case(name) for name in MAKE_RUN])
def test_notebook_runs_with_its_quick_parameters(name: str, notebooks) -> None:
    run = notebooks.run(kind(name), name)
    assert run.results, f"{name} recorded nothing"
    for key in run.parameters.keys() & run.results.keys():  # parameters it records took effect
        assert run.results[key] == run.parameters[key], key
    assert (run.folder / name).is_file()


@pytest.mark.slow
@pytest.mark.notebook(QUICK_RUN, "03_training.ipynb")
def test_parameters_cell_runs_a_quick_version(notebooks) -> None:
    r = notebooks.run(QUICK_RUN, "03_training.ipynb").results
    assert (r["iterations"], r["als_sweeps"]) == (30, 2)
    assert r["model1_last_total_loss"] < r["model1_first_total_loss"]


@pytest.mark.slow
@pytest.mark.notebook(QUICK_RUN, "04_recommendations.ipynb")
def test_recommendations_notebook_takes_every_choice_from_parameters(notebooks) -> None:
    r = notebooks.run(QUICK_RUN, "04_recommendations.ipynb").results
    names = notebooks.synthetic_names()
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
    assert MAKE_RUN, "no notebooks found"
    assert {name[:2] for name in MAKE_RUN} <= QUICK.keys()
