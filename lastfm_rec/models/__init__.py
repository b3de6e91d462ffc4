"""Recommenders with one interface (``implicit``'s): fit, recommend, similar_items.

``available()`` maps each registered name to a factory of the model with its default
parameters; ``create(name, **params)`` builds one with parameters overridden. The defaults
are the settings :func:`lastfm_rec.evaluation.tuning.run_study` chose on validation NDCG@10 of
the real data (seed 42; recorded in :data:`TUNED`), except ``sgd-mf``, which keeps the original
notebook's settings: every setting searched ranked at chance level, so the "best" one would
be noise.

===================  =========================================================================
``random``           a seeded random order per user: the chance level
``popularity``       most listeners first (the baseline)
``item-knn``         item-item cosine of log1p play vectors, top-K neighbours
``rp3beta``          popularity-discounted 3-step random walk
``als``              ``implicit`` ALS (Hu, Koren & Volinsky confidence weights)
``ease``             closed-form item-item ridge model with a zero diagonal
``hybrid``           EASE with tag-aware weights and friends' plays + tag profile + ALS: the best
``sgd-mf``           the original's MSE-on-observed matrix factorisation (``original.cfmodel``)
``spark-als``        ALS fitted by Apache Spark MLlib (the ``spark`` extra and Java 17+)
``lightgcn``         LightGCN: light graph convolution over the user-artist graph, BPR
                     (TensorFlow; epochs chosen on a validation part)
``social-lightgcn``  SocialLGN: LightGCN whose users also propagate over the friend graph
===================  =========================================================================

Models in :data:`SLOW` (the graph models: minutes per fit on the real data; TensorFlow) and in
:data:`EXTRAS` are registered and pass the same contract, but are left out of
:func:`lastfm_rec.evaluation.tuning.run_study`'s default models (so out of ``make run``'s
notebooks): name them to include them.

The hybrid uses side data only when given it (``item_tags``, ``user_friends``); built by
``create("hybrid")`` alone it is EASE blended with ALS. Its parts' settings have
scikit-learn's nested names: ``create("hybrid", als__factors=64)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from lastfm_rec.models.als import ALSRecommender
from lastfm_rec.models.base import ModelFitError, Recommender
from lastfm_rec.models.ease import EASERecommender
from lastfm_rec.models.hybrid import BINARY_ALS, HybridRecommender
from lastfm_rec.models.item_knn import ItemKNNRecommender
from lastfm_rec.models.lightgcn import LightGCNRecommender, SocialLightGCNRecommender
from lastfm_rec.models.popularity import PopularityRecommender, RandomRecommender
from lastfm_rec.models.rp3beta import RP3betaRecommender
from lastfm_rec.models.sgd_mf import SGDMFRecommender
from lastfm_rec.models.spark_als import SparkALSRecommender

_REGISTRY: dict[str, type[Recommender]] = {
    "random": RandomRecommender,
    "popularity": PopularityRecommender,
    "item-knn": ItemKNNRecommender,
    "rp3beta": RP3betaRecommender,
    "als": ALSRecommender,
    "ease": EASERecommender,
    "hybrid": HybridRecommender,
    "sgd-mf": SGDMFRecommender,
    "spark-als": SparkALSRecommender,
    "lightgcn": LightGCNRecommender,
    "social-lightgcn": SocialLightGCNRecommender,
}

#: The registered model that ranks held-out listens best (test NDCG@10, notebook 5's
#: ``best_model``): what notebook 4 folds your likes into.
BEST_MODEL = "hybrid"

#: Models that need an install extra (name -> extra): left out of the study's default models.
EXTRAS: dict[str, str] = {"spark-als": "spark"}

#: Models too slow for the study's default models (trained for minutes on the real data):
#: run only when named.
SLOW: frozenset[str] = frozenset({"lightgcn", "social-lightgcn"})

#: Settings chosen on validation NDCG@10 (real data, seed 42), which the defaults equal.
TUNED: dict[str, dict[str, Any]] = {
    "item-knn": {"K": 3000, "weighting": "cosine", "shrink": 10.0},
    "rp3beta": {"alpha": 0.75, "beta": 0.3, "K": 1000},
    "als": {"factors": 256, "regularization": 100.0, "alpha": 5.0, "scaling": "log1p"},
    "ease": {"l2": 100.0, "scaling": "binary"},
    "hybrid": {"l2": 50.0, "tag_gram": 20.0, "friends": 0.3, "tag_weight": 0.4,
               "als_weight": 1.0, "als__factors": 256, "als__regularization": 100.0,
               "als__alpha": 5.0, "als__scaling": "log1p"},
}


#: Settings chosen for 0/1 input (every pair a positive: no play counts) on validation
#: NDCG@10 of the literature protocol (:mod:`lastfm_rec.evaluation.literature`; real data binarised,
#: global 80/20 row split seed 0, validation = 20% of its training rows, seed 1000). Play-count
#: settings collapse there (confidence on log1p plays, regularisation tuned for counts).
TUNED_BINARY: dict[str, dict[str, Any]] = {
    "als": dict(BINARY_ALS),
    "ease": {"l2": 100.0, "scaling": "binary"},
    "hybrid": {"l2": 100.0, "friends": 0.0, "social_weight": 0.1, "rp3_weight": 0.2,
               "als_weight": 1.5, "als__factors": 64, "als__regularization": 30.0,
               "als__alpha": 20.0, "als__scaling": "binary"},
}

#: The registry's settings per input kind: ``"plays"`` (play counts: the defaults) and
#: ``"binary"`` (0/1 pairs); :func:`create` picks them with ``inputs``.
TUNED_BY_INPUT: dict[str, dict[str, dict[str, Any]]] = {"plays": TUNED, "binary": TUNED_BINARY}

#: Validation NDCG@10 of the chosen settings, per input kind. ``"plays"``: the per-user
#: holdout of :func:`lastfm_rec.evaluation.tuning.run_study`. ``"binary"``: the literature split
#: above, ALS from a grid (factors 64-256, regularisation 3-100, alpha 3-40; the play-count setting
#: 256/100/5 on log1p collapses), EASE's l2 from 50-200, the hybrid's blend weights by
#: coordinate ascent over component scores (EASE alone 0.1701; + ALS 0.1793; + RP3beta and
#: friends' artists 0.1823; friends in EASE's query added 0.0004 and were left out).
TUNED_VALIDATION: dict[str, dict[str, float]] = {
    "plays": {"hybrid": 0.1974, "als": 0.1895, "ease": 0.1727},
    "binary": {"als": 0.1688, "ease": 0.1701, "hybrid": 0.1823},
}


def input_kind(user_items: Any) -> str:
    """``"binary"`` when every stored value of ``user_items`` is 1 (0/1 pairs), else
    ``"plays"``: the ``inputs`` to pass to :func:`create`."""
    data = user_items.data[user_items.data != 0]
    return "binary" if data.size and (data == 1).all() else "plays"


def available() -> dict[str, Callable[[], Recommender]]:
    """Registered names -> zero-argument factories of the default models."""
    return {name: partial(factory) for name, factory in _REGISTRY.items()}


def side_params(name: str) -> tuple[str, ...]:
    """The side-data arguments model ``name`` takes besides the plays (for
    :func:`lastfm_rec.data.matrices.side_data`)."""
    return _class(name).side_params


def _class(name: str) -> type[Recommender]:
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}")
    return factory


def create(name: str, inputs: str = "plays", **params: Any) -> Recommender:
    """The model registered as ``name`` with the settings for its input kind, ``params``
    overriding them.

    ``inputs`` is what the model will be fitted on: ``"plays"`` (play counts; the registry
    defaults, :data:`TUNED`) or ``"binary"`` (0/1 pairs; :data:`TUNED_BINARY`). Nothing is
    detected at fit time: pass ``inputs=input_kind(matrix)`` to choose from the data.
    """
    factory = _class(name)
    if inputs not in TUNED_BY_INPUT:
        raise ValueError(f"unknown inputs {inputs!r}; use one of {', '.join(TUNED_BY_INPUT)}")
    settings = TUNED_BY_INPUT[inputs].get(name, {}) if inputs != "plays" else {}
    return factory(**{**settings, **params})


__all__ = ["BEST_MODEL", "EXTRAS", "SLOW", "TUNED", "TUNED_BINARY", "TUNED_BY_INPUT",
           "TUNED_VALIDATION", "ModelFitError", "Recommender", "available", "create",
           "input_kind", "side_params"]
