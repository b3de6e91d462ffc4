"""Placing a user in an embedding space from the artists they like.

Two ways, both against fixed artist embeddings: :func:`similar_users_embedding` (the original
notebook's heuristic: the mean embedding of the most similar training users) and
:func:`fold_in` (least squares on the model's own objective). Used by
:mod:`lastfm_rec.original.recommend` and the ``sgd-mf`` model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def like_vector(liked: Sequence[int] | np.ndarray, n_artists: int) -> np.ndarray:
    """A 0/1 vector over artists with 1 at each liked ``a_id``."""
    vector = np.zeros(n_artists, dtype=np.float64)
    vector[np.asarray(liked, dtype=np.int64)] = 1.0
    return vector


def similar_users_embedding(liked: Sequence[int] | np.ndarray, ratings: sp.spmatrix,
                            user_embeddings: np.ndarray, n_similar: int = 5) -> np.ndarray:
    """The original's heuristic: the mean embedding of the users most similar to the likes.

    Similarity is the dot product of the 0/1 like vector with each user's row of scaled
    play counts (``w_mm``); ties go to the lower ``u_id``.

    Parameters
    ----------
    liked
        ``a_id`` of the liked artists.
    ratings
        Users x artists sparse matrix of ``w_mm`` (the training ratings).
    user_embeddings
        ``(N, k)`` user embeddings of the trained model.
    n_similar
        How many similar users to average (the original uses 5).
    """
    similarity = np.asarray(sp.csr_matrix(ratings) @ like_vector(liked, ratings.shape[1]))
    order = np.lexsort((np.arange(similarity.size), -similarity))[:n_similar]
    return np.asarray(user_embeddings)[order].mean(axis=0)


def fold_in(liked: Sequence[int] | np.ndarray, artist_embeddings: np.ndarray,
            regularization: float = 0.1, gravity: float = 0.0,
            values: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """Solve for a new user's embedding against fixed artist embeddings.

    Minimises ``sum_j (a_j - <u, v_j>)^2`` over the liked artists ``j``
    ``+ regularization * |u|^2 + gravity * mean_j' <u, v_j'>^2`` over all artists: the
    model's own objective for one user whose liked entries are observed. ``values`` are the
    targets ``a_j`` (default 1 each; then the solution is linear in that common target, so
    the ranking does not depend on its value).
    """
    artist_embeddings = np.asarray(artist_embeddings, dtype=np.float64)
    liked_vectors = artist_embeddings[np.asarray(liked, dtype=np.int64)]
    targets = np.ones(len(liked_vectors)) if values is None else np.asarray(values, float)
    dim = artist_embeddings.shape[1]
    gram = liked_vectors.T @ liked_vectors + regularization * np.eye(dim)
    if gravity:
        gram += gravity * (artist_embeddings.T @ artist_embeddings) / len(artist_embeddings)
    return np.linalg.lstsq(gram, liked_vectors.T @ targets, rcond=None)[0]
