"""The registered model names as test parameters: a model that needs an install extra
(``lastfm_rec.models.EXTRAS``, e.g. Spark) is skipped where the extra is not installed."""

from __future__ import annotations

import importlib.util

import pytest

from lastfm_rec import models

#: Settings for the contract's 50 x 50 checkerboard and other tiny matrices (the registry
#: defaults are tuned for 1892 x 17632). A new model that needs smaller settings adds them here.
SMALL: dict[str, dict] = {
    "als": {"factors": 3, "regularization": 0.0, "alpha": 1.0},
    "hybrid": {"als__factors": 3, "als__regularization": 0.0, "als__alpha": 1.0},
    "sgd-mf": {"embedding_dim": 4, "num_iterations": 300, "learning_rate": 5.0},
    # Each Spark iteration is a few jobs, slow whatever the size: 5 sweeps learn the board
    # (test_spark.py fits 60, and the real data's 15, elsewhere).
    "spark-als": {"iterations": 5},
    # One Adam step per epoch (the board has 1,200 positives); 30 epochs with a validation
    # NDCG every 10 keep a fit near 0.3 s, most of it tracing the step once.
    "lightgcn": {"factors": 8, "layers": 2, "learning_rate": 0.05, "batch_size": 2048,
                 "epochs": 30, "eval_every": 10, "patience": 2},
    "social-lightgcn": {"factors": 8, "layers": 2, "learning_rate": 0.05, "batch_size": 2048,
                        "epochs": 30, "eval_every": 10, "patience": 2},
}
#: Extra -> the module that shows it is installed.
EXTRA_MODULES = {"spark": "pyspark"}


def registered() -> list:
    """``pytest.param`` per registered name, with a skip mark when its extra is missing."""
    extras = getattr(models, "EXTRAS", {})
    cases = []
    for name in models.available():
        module = EXTRA_MODULES.get(extras.get(name, ""), extras.get(name))
        missing = module is not None and importlib.util.find_spec(module) is None
        cases.append(pytest.param(name, id=name, marks=pytest.mark.skipif(
            missing, reason=f"{name} needs the {extras.get(name)} extra")))
    return cases


def use_extra(name: str, request: pytest.FixtureRequest) -> None:
    """Set up the session fixture of ``name``'s install extra (``spark``: the one Spark
    session of the run), which skips without the extra, or fails in CI."""
    if name in getattr(models, "EXTRAS", {}):
        request.getfixturevalue(models.EXTRAS[name])
