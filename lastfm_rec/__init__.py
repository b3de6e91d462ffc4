"""lastfm_rec: artist recommendations from Last.fm listening histories (HetRec 2011 2K).

The package is layered as the analysis runs, each layer importing only those below it
(``tests/test_layering.py``): ``ops`` (CSR check, top-N, row normalisation) -> ``data`` (find,
download, verify, load) -> ``preprocessing`` (trim, scale, re-index, tags, popularity, split)
-> ``matrices`` (play, tag and friend matrices, side data) -> ``models`` and ``cfmodel`` (the
recommenders; the TensorFlow 1-style matrix factorisation) -> ``evaluation``/``tuning``/
``recommend`` -> ``service``/``cli``. Names that need TensorFlow are imported on first use,
so ``import lastfm_rec`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # name -> module that defines it; loaded on first attribute access
    "DataError": "data",
    "Dataset": "data",
    "find_data_dir": "data",
    "fetch_data": "data",
    "verify_data": "data",
    "load_dataset": "data",
    "load_artists": "data",
    "load_tags": "data",
    "load_user_artists": "data",
    "load_user_friends": "data",
    "load_user_tagged": "data",
    "load_user_tagged_timestamps": "data",
    "WeightScaler": "preprocessing",
    "IdMap": "preprocessing",
    "outlier_threshold": "preprocessing",
    "transform_weights": "preprocessing",
    "label_tags": "preprocessing",
    "add_top_tags": "preprocessing",
    "add_popularity_score": "preprocessing",
    "reindex": "preprocessing",
    "split_dataframe": "preprocessing",
    "prepare": "preprocessing",
    "PreparedData": "preprocessing",
    "build_rating_sparse_tensor": "cfmodel",
    "sparse_mean_square_error": "cfmodel",
    "gravity": "cfmodel",
    "build_model": "cfmodel",
    "CFModel": "cfmodel",
    "compute_scores": "recommend",
    "user_recommendations": "recommend",
    "artist_neighbors": "recommend",
    "read_rec_sheet": "recommend",
    "fold_in": "recommend",
    "similar_users_embedding": "recommend",
    "popularity_correlation": "recommend",
    "generate_hetrec": "synthetic",
    "SyntheticSpec": "synthetic",
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
