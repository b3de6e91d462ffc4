"""Recommenders with one interface (``implicit``'s): fit, recommend, similar_items.

``available()`` maps each registered name to a factory of the model with its default
parameters; ``create(name, **params)`` builds one with parameters overridden. The defaults
are the settings :func:`lastfm_rec.tuning.run_study` chose on validation NDCG@10 of the real
data (seed 42; recorded in :data:`TUNED`), except ``sgd-mf``, which keeps the original
notebook's settings: every setting searched ranked at chance level, so the "best" one would
be noise.

===============  =========================================================================
``random``       a seeded random order per user: the chance level
``popularity``   most listeners first (the baseline)
``item-knn``     item-item cosine of log1p play vectors, top-K neighbours
``rp3beta``      popularity-discounted 3-step random walk
``als``          ``implicit`` ALS (Hu, Koren & Volinsky confidence weights)
``ease``         closed-form item-item ridge model with a zero diagonal
``hybrid``       EASE with tag-aware weights and friends' plays + tag profile + ALS: the best
``sgd-mf``       the original's MSE-on-observed matrix factorisation (``lastfm_rec.cfmodel``)
``spark-als``    ALS fitted by Apache Spark MLlib (the ``spark`` extra and Java 17+)
===============  =========================================================================

The hybrid uses side data only when given it (``item_tags``, ``user_friends``); built by
``create("hybrid")`` alone it is EASE blended with ALS.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from lastfm_rec.models.als import ALSRecommender
from lastfm_rec.models.base import Recommender
from lastfm_rec.models.ease import EASERecommender
from lastfm_rec.models.hybrid import HybridRecommender
from lastfm_rec.models.item_knn import ItemKNNRecommender
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
}

#: Models that need an install extra (name -> extra): left out of the study's default models.
EXTRAS: dict[str, str] = {"spark-als": "spark"}

#: Settings chosen on validation NDCG@10 (real data, seed 42), which the defaults equal.
TUNED: dict[str, dict[str, Any]] = {
    "item-knn": {"K": 3000, "weighting": "cosine", "shrink": 10.0},
    "rp3beta": {"alpha": 0.75, "beta": 0.3, "K": 1000},
    "als": {"factors": 256, "regularization": 100.0, "alpha": 5.0, "scaling": "log1p"},
    "ease": {"l2": 100.0, "scaling": "binary"},
    "hybrid": {"l2": 50.0, "tag_gram": 20.0, "friends": 0.3, "tag_weight": 0.4,
               "als_weight": 1.0, "als_factors": 256, "als_regularization": 100.0,
               "als_alpha": 5.0, "als_scaling": "log1p"},
}


def available() -> dict[str, Callable[[], Recommender]]:
    """Registered names -> zero-argument factories of the default models."""
    return {name: partial(factory) for name, factory in _REGISTRY.items()}


def create(name: str, **params: Any) -> Recommender:
    """The model registered as ``name``, with ``params`` overriding its defaults."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}")
    return factory(**params)


__all__ = ["EXTRAS", "TUNED", "Recommender", "available", "create"]
