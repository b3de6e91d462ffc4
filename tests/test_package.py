"""The package's front door: the design card's names import from ``lastfm_rec`` directly, and
importing it does not load TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lastfm_rec

#: The original notebook's functions and the data's entry points, as the design card names them.
DESIGN_CARD = ("load_dataset", "prepare", "transform_weights", "add_top_tags",
               "add_popularity_score", "split_dataframe", "build_rating_sparse_tensor",
               "sparse_mean_square_error", "gravity", "build_model", "CFModel",
               "compute_scores", "user_recommendations", "artist_neighbors", "read_rec_sheet")


@pytest.mark.parametrize("name", DESIGN_CARD)
def test_design_card_names_import_from_the_package(name: str) -> None:
    value = getattr(lastfm_rec, name)
    assert callable(value)
    assert value.__module__.startswith("lastfm_rec.")
    assert name in lastfm_rec.__all__


def test_every_exported_name_resolves() -> None:
    for name in lastfm_rec.__all__:
        assert getattr(lastfm_rec, name) is not None, name


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = lastfm_rec.not_a_name


def test_import_does_not_load_tensorflow() -> None:
    code = ("import sys, lastfm_rec; lastfm_rec.load_dataset; lastfm_rec.prepare; "
            "print('tensorflow' in sys.modules, 'numba' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert shown.stdout.strip() == "False False"


def test_cli_help_does_not_load_tensorflow_or_numba() -> None:
    code = ("import sys\nfrom lastfm_rec.serving.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules, 'numba' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert shown.stdout.strip().splitlines()[-1] == "False False"


def test_cfmodel_loads_numba_only_when_the_fast_path_runs() -> None:
    code = ("import sys\nfrom lastfm_rec.original import cfmodel\n"
            "print('numba' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert shown.stdout.strip().splitlines()[-1] == "False"
