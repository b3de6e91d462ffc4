"""lastfm_rec: artist recommendations from Last.fm listening histories (HetRec 2011 2K).

Subpackages by responsibility, each importing only those below it (``tests/test_layering.py``):

* :mod:`lastfm_rec.data`: the HetRec files, synthetic data, the original's preprocessing, the
  matrices every model reads, and rec sheets;
* :mod:`lastfm_rec.original`: the original notebook's TensorFlow 1-style model and section 3;
* :mod:`lastfm_rec.models`: recommenders with ``implicit``'s interface, and their registry;
* :mod:`lastfm_rec.evaluation`: splits, ranking metrics, tuning and the literature's protocol;
* :mod:`lastfm_rec.serving`: the session, the model cache, explanations and the command line;
* :mod:`lastfm_rec.spark`: the pipeline on Apache Spark (an install extra).

Beside them, :mod:`lastfm_rec.ops` holds the numeric primitives, :mod:`lastfm_rec.files`
atomic writes and the model file format, and :mod:`lastfm_rec.reports` runs the notebooks. The
names below (the original notebook's functions among them) import from ``lastfm_rec`` directly;
those that need TensorFlow load on first use, so ``import lastfm_rec`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # name -> module that defines it; loaded on first attribute access
    "DataError": "data.hetrec",
    "Dataset": "data.hetrec",
    "find_data_dir": "data.hetrec",
    "fetch_data": "data.hetrec",
    "verify_data": "data.hetrec",
    "load_dataset": "data.hetrec",
    "load_artists": "data.hetrec",
    "load_tags": "data.hetrec",
    "load_user_artists": "data.hetrec",
    "load_user_friends": "data.hetrec",
    "load_user_tagged": "data.hetrec",
    "load_user_tagged_timestamps": "data.hetrec",
    "WeightScaler": "data.preprocessing",
    "IdMap": "data.preprocessing",
    "outlier_threshold": "data.preprocessing",
    "transform_weights": "data.preprocessing",
    "label_tags": "data.preprocessing",
    "add_top_tags": "data.preprocessing",
    "add_popularity_score": "data.preprocessing",
    "reindex": "data.preprocessing",
    "split_dataframe": "data.preprocessing",
    "prepare": "data.preprocessing",
    "PreparedData": "data.preprocessing",
    "build_rating_sparse_tensor": "original.cfmodel",
    "sparse_mean_square_error": "original.cfmodel",
    "gravity": "original.cfmodel",
    "build_model": "original.cfmodel",
    "CFModel": "original.cfmodel",
    "compute_scores": "original.recommend",
    "user_recommendations": "original.recommend",
    "artist_neighbors": "original.recommend",
    "read_rec_sheet": "data.sheets",
    "fold_in": "original.foldin",
    "similar_users_embedding": "original.foldin",
    "popularity_correlation": "original.recommend",
    "generate_hetrec": "data.synthetic",
    "SyntheticSpec": "data.synthetic",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lastfm_rec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
