"""The original notebook's section 3: scores, personal recommendations and artist neighbours from
embeddings, a new user placed in a trained model, the popularity-bias check, the share of a list
in a genre and how well an embedding's neighbourhoods keep to one genre.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lastfm_rec.data.sheets import find_artist
from lastfm_rec.ops import normalize_rows, top_n
from lastfm_rec.original.foldin import fold_in, similar_users_embedding

Measure = Literal["dot", "cosine"]

MEASURES: tuple[str, ...] = ("dot", "cosine")

RESULT_COLUMNS = ["a_id", "artistID", "name", "score", "top3_tags", "popularity_score",
                  "listeners"]

class HasEmbeddings(Protocol):
    """Anything with ``embeddings = {"u_id": (N, k) array, "a_id": (M, k) array}``."""

    embeddings: dict[str, np.ndarray]

def compute_scores(query_embedding: np.ndarray, item_embeddings: np.ndarray,
                   measure: Measure = "dot") -> np.ndarray:
    """Score every item against a query embedding.

    Parameters
    ----------
    query_embedding
        Vector of shape ``(k,)``.
    item_embeddings
        Matrix of shape ``(M, k)``, one row per item.
    measure
        ``"dot"`` (inner product) or ``"cosine"`` (inner product of unit vectors; a zero
        vector scores 0 against everything instead of NaN).

    Returns
    -------
    numpy.ndarray
        Shape ``(M,)``.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    query = np.asarray(query_embedding, dtype=np.float64)
    items = np.asarray(item_embeddings, dtype=np.float64)
    if measure == "cosine":
        query = normalize_rows(query[None, :])[0]
        items = normalize_rows(items)
    return items @ query

def _ranked_table(scores: np.ndarray, artists: pd.DataFrame, k: int,
                  exclude: Sequence[int] | np.ndarray | None = None) -> pd.DataFrame:
    """The ``k`` best-scored artists with their descriptive columns, best first."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(scores) != len(artists):
        raise ValueError(f"{len(scores)} scores for {len(artists)} artists: "
                         "the artists table must be in a_id order (see preprocessing.reindex)")
    ranked = np.array(scores, dtype=np.float64)
    if exclude is not None:
        ranked[np.asarray(exclude, dtype=np.int64)] = -np.inf
    ids, _ = top_n(ranked[None, :], k)
    order = ids[0][ids[0] >= 0].astype(np.int64)
    if order.size == 0:
        raise ValueError("nothing left to recommend: every artist is excluded")
    table = artists.iloc[order].copy()
    table["score"] = scores[order]
    table["a_id"] = order
    return table[[c for c in RESULT_COLUMNS if c in table.columns]].reset_index(drop=True)

def user_recommendations(model: HasEmbeddings, user_embedding: np.ndarray,
                         artists: pd.DataFrame, measure: Measure = "dot",
                         exclude: Sequence[int] | np.ndarray | None = None,
                         k: int = 6) -> pd.DataFrame:
    """The ``k`` artists that score highest for a user embedding.

    Parameters
    ----------
    model
        A trained model with ``embeddings["a_id"]``.
    user_embedding
        The user's embedding, shape ``(k,)``.
    artists
        Artists in ``a_id`` order with ``name``, ``top3_tags``, ``popularity_score`` and
        ``listeners`` (see :func:`lastfm_rec.data.preprocessing.prepare`).
    measure
        ``"dot"`` or ``"cosine"``.
    exclude
        ``a_id`` values never to recommend (e.g. the artists the user already likes).
    k
        How many artists to return.

    Returns
    -------
    pandas.DataFrame
        Columns ``a_id, artistID, name, score, top3_tags, popularity_score, listeners``,
        best first; ``attrs["measure"]`` names the measure.
    """
    scores = compute_scores(user_embedding, model.embeddings["a_id"], measure)
    table = _ranked_table(scores, artists, k, exclude)
    table.attrs["measure"] = measure
    return table

def artist_neighbors(model: HasEmbeddings, name: str, artists: pd.DataFrame,
                     measure: Measure = "dot", k: int = 5) -> pd.DataFrame:
    """The ``k`` artists nearest to a named artist in the embedding space.

    The artist itself is included (under ``cosine`` it comes first with score 1).
    ``attrs`` holds ``query`` (the matched name) and ``other_candidates`` (other names that
    matched the search).
    """
    a_id, others = find_artist(name, artists)
    item_embeddings = model.embeddings["a_id"]
    scores = compute_scores(item_embeddings[a_id], item_embeddings, measure)
    table = _ranked_table(scores, artists, k)
    table.attrs.update(measure=measure, query=str(artists["name"].iloc[a_id]),
                       other_candidates=others)
    return table

def fold_in_model(model: Any, liked: Sequence[int] | np.ndarray) -> np.ndarray:
    """:func:`fold_in` with the weights of a trained ``CFModel``'s own objective.

    Multiplying the model's objective by the number of training entries ``|Ω|`` makes a
    new user's squared errors count 1 each, its L2 term ``λ_r |Ω| / N`` and its gravity term
    ``λ_g |Ω| / N`` (N users): the same trade-off the trained users were fitted with.
    """
    if model.train_ratings is None:
        raise ValueError("fold_in_model needs a model built by build_model (its training rows)")
    hp = model.hyperparameters
    scale = len(model.train_ratings) / hp["n_users"]
    return fold_in(liked, model.embeddings["a_id"], hp["regularization_coeff"] * scale,
                   hp["gravity_coeff"] * scale)

def similar_users_model(model: Any, liked: Sequence[int] | np.ndarray,
                        n_similar: int = 5) -> np.ndarray:
    """:func:`similar_users_embedding` in a trained ``CFModel``: the users are compared on
    the model's training rows (``w_mm``) and their embeddings averaged."""
    if model.train_ratings is None:
        raise ValueError("similar_users_model needs a model built by build_model "
                         "(its training rows)")
    hp, rows = model.hyperparameters, model.train_ratings
    ratings = sp.csr_matrix((rows["w_mm"], (rows["u_id"], rows["a_id"])),
                            shape=(hp["n_users"], hp["n_artists"]))
    return similar_users_embedding(liked, ratings, model.embeddings["u_id"], n_similar)

def popularity_correlation(scores: np.ndarray, artists: pd.DataFrame) -> dict[str, Any]:
    """Spearman rank correlation of scores with ``popularity_score`` and ``listeners``.

    Close to 0 means the scores ignore popularity; close to 1 means they mostly follow it.
    """
    ranks = pd.Series(np.asarray(scores, dtype=np.float64))
    return {
        "popularity_score": float(ranks.corr(
            artists["popularity_score"].reset_index(drop=True), method="spearman")),
        "listeners": float(ranks.corr(
            artists["listeners"].reset_index(drop=True).astype(float), method="spearman")),
    }

def tag_share(top3_tags: Sequence[str] | pd.Series, keywords: Sequence[str]) -> float:
    """Share of artists with a top tag that contains one of ``keywords`` (e.g. ``["metal"]``
    also counts "black metal"); ``top3_tags`` entries look like ``"pop / rnb / dance"``."""
    tags = [str(entry).split(" / ") for entry in top3_tags]
    if not tags:
        raise ValueError("tag_share needs at least one artist")
    return sum(any(k in tag for tag in entry for k in keywords) for entry in tags) / len(tags)

def same_label_share(vectors: np.ndarray, labels: Sequence[Any] | np.ndarray,
                     n: int = 5) -> float:
    """Mean share of each item's ``n`` nearest items (cosine, itself left out) that have its
    label: with artists' top tags, how well an embedding keeps neighbours within a genre.

    Ties go to the lower row (:func:`lastfm_rec.ops.top_n`).
    """
    labels = np.asarray(labels)
    if len(labels) != len(vectors):
        raise ValueError(f"{len(labels)} labels for {len(vectors)} vectors: give one per row")
    unit = normalize_rows(vectors)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest, _ = top_n(similarity, n)
    return float((labels[nearest] == labels[:, None]).mean())
