"""Why a model recommends an artist: each liked artist's share of the score, from the
model's own arithmetic.

For a new user folded in from a row of likes (``recommend(..., recalculate_user=True)``),
:func:`contributions` splits the score of every artist into one term per liked artist, and
the terms add up to the model's score:

``item-knn``, ``rp3beta`` (item-item similarity)
    ``score_j = sum_i x_i S_ij``: liked artist ``i`` contributes its scaled play value times
    the similarity weight ``S_ij`` (``similarity_``).
``ease``
    The same with EASE's weights ``B_ij`` (``weights_``; artists EASE does not model
    contribute nothing).
``als``
    As ``implicit``'s ``AlternatingLeastSquares.explain`` (Hu, Koren & Volinsky 2008,
    section 5): the folded-in user is ``u = A^-1 sum_i c_i y_i`` with
    ``A = Y^T Y + lambda I + sum_i (c_i - 1) y_i y_i^T`` and confidence ``c_i`` = alpha times
    the scaled play value, so ``score_j = y_j . u = sum_i c_i y_j^T A^-1 y_i``.
``sgd-mf`` (the original's objective, least-squares fold-in)
    The same algebra as ALS for the model's own per-user objective:
    ``u = A^-1 sum_i w_i v_i`` with ``A = V_l^T V_l + l2 I + gravity V^T V`` (the per-user
    weights of :meth:`~lastfm_rec.models.sgd_mf.SGDMFRecommender._least_squares`) and
    ``w_i`` the min-max scaled play value, so liked artist ``i`` contributes
    ``w_i v_j^T A^-1 v_i``.
``hybrid``
    The sum of its parts' contributions, each weighted as the hybrid weighs the part
    (EASE: 1, tag profile: ``tag_weight``, ALS: ``als_weight``, and where the hybrid has
    them RP3beta: ``rp3_weight``, ALS on 0/1 input: ``binary_als_weight``; the friends'
    term needs known friends, which a new user does not have) and divided by the part's
    largest absolute score for this user, as the hybrid scales each part. The tag profile's
    term for liked artist ``i`` is ``t_i . t_j / |sum_k t_k|`` (the cosine's numerator is a
    sum over the liked artists' tag vectors).

``popularity``, ``random`` and ``sgd-mf`` with the similar-users fold-in are not explained
(their scores do not split into terms per liked artist). Contributions can be negative: the
liked artists that pulled an artist up are the ones with the largest positive terms
(:func:`because_you_like`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatch

import numpy as np
import scipy.sparse as sp

from lastfm_rec.models.als import ALSRecommender
from lastfm_rec.models.base import ItemSimilarityRecommender, Recommender, scale_plays
from lastfm_rec.models.ease import EASERecommender
from lastfm_rec.models.hybrid import HybridRecommender
from lastfm_rec.models.sgd_mf import SGDMFRecommender


def contributions(model: Recommender, user_items: sp.csr_matrix) -> np.ndarray:
    """Each liked artist's term in every artist's score, for a user folded in from a row.

    Parameters
    ----------
    model
        A fitted ``item-knn``, ``rp3beta``, ``ease``, ``als``, ``hybrid`` or ``sgd-mf``
        (least-squares fold-in) model.
    user_items
        One-row CSR matrix of the user's play counts (as given to ``recommend`` with
        ``recalculate_user=True``).

    Returns
    -------
    numpy.ndarray
        Shape ``(nnz, n_items)``: row ``r`` holds the terms of liked artist
        ``user_items.indices[r]`` (indices sorted); summed over rows they give the model's
        score of each artist (up to float32 rounding for ALS).
    """
    if getattr(model, "n_items", None) is None:
        raise RuntimeError(f"{type(model).__name__} is not fitted: call fit() first")
    if not sp.issparse(user_items) or user_items.format != "csr" or user_items.shape != (
            1, model.n_items):
        raise ValueError(f"user_items must be a 1 x {model.n_items} CSR matrix (one user)")
    row = sp.csr_matrix(user_items, dtype=np.float64)
    row.eliminate_zeros()
    row.sort_indices()
    return _terms(model, row)


def because_you_like(model: Recommender, user_items: sp.csr_matrix, itemids: np.ndarray,
                     names: Sequence[str], n: int = 3) -> list[list[str]]:
    """For each artist in ``itemids``, the names of up to ``n`` liked artists with the largest
    positive contributions to its score, largest first (``names`` indexed by artist id)."""
    terms = contributions(model, user_items)
    liked = np.sort(user_items.indices)
    reasons = []
    for item in np.asarray(itemids, dtype=np.int64):
        column = terms[:, item]
        order = np.lexsort((liked, -column))[:n]
        reasons.append([str(names[liked[r]]) for r in order if column[r] > 0])
    return reasons


def check_explainable(model: Recommender) -> None:
    """Raise ``ValueError`` (one line, naming the models that are) unless :func:`contributions`
    explains ``model``'s kind; needs no fitting."""
    if _terms.dispatch(type(model)) is _terms.dispatch(Recommender) or (
            isinstance(model, SGDMFRecommender) and model.fold_in != "least-squares"):
        raise _unexplained(model)


def _unexplained(model: Recommender) -> ValueError:
    name = type(model).name or type(model).__name__
    if isinstance(model, SGDMFRecommender):
        name += f" (fold_in={model.fold_in!r})"
    return ValueError(f"model {name} has no per-artist explanation; use item-knn, rp3beta, "
                      "ease, als, hybrid or sgd-mf with the least-squares fold-in")


@singledispatch
def _terms(model: Recommender, row: sp.csr_matrix) -> np.ndarray:
    raise _unexplained(model)


@_terms.register
def _(model: ItemSimilarityRecommender, row: sp.csr_matrix) -> np.ndarray:
    values = scale_plays(row, model.scaling).data
    weights = sp.csr_matrix(model.similarity_)[row.indices]
    return np.asarray(weights.todense()) * values[:, None]


@_terms.register
def _(model: EASERecommender, row: sp.csr_matrix) -> np.ndarray:
    return _ease_terms(scale_plays(row, model.scaling), model.items_, model.weights_,
                       model.n_items)


def _ease_terms(scaled: sp.csr_matrix, items: np.ndarray, weights: np.ndarray,
                n_items: int) -> np.ndarray:
    terms = np.zeros((scaled.nnz, n_items))
    position = np.searchsorted(items, scaled.indices)
    modelled = (position < items.size) & (items[np.minimum(position, items.size - 1)]
                                          == scaled.indices)
    rows = np.flatnonzero(modelled)
    terms[np.ix_(rows, items)] = weights[position[rows]] * scaled.data[rows, None]
    return terms


@_terms.register
def _(model: ALSRecommender, row: sp.csr_matrix) -> np.ndarray:
    factors = np.asarray(model.item_factors, dtype=np.float64)
    confidence = model.alpha * scale_plays(row, model.scaling).data
    liked = factors[row.indices]
    system = factors.T @ factors + model.regularization * np.eye(factors.shape[1])
    system += (liked.T * (confidence - 1.0)) @ liked
    return _linear_fold_in_terms(factors, system, liked, confidence)


def _linear_fold_in_terms(factors: np.ndarray, system: np.ndarray, liked: np.ndarray,
                          weights: np.ndarray) -> np.ndarray:
    """Terms of ``score_j = y_j . A^-1 sum_i weights_i y_i``: ``weights_i y_j^T A^-1 y_i``."""
    solved = np.linalg.solve(system, liked.T)  # A^-1 y_i, one column per liked artist
    return (factors @ solved).T * weights[:, None]


@_terms.register
def _(model: SGDMFRecommender, row: sp.csr_matrix) -> np.ndarray:
    check_explainable(model)
    factors = np.asarray(model.item_factors, dtype=np.float64)
    low, high = model.scale_
    values = (row.data - low) / (high - low) if high > low else np.zeros(row.nnz)
    scale = float(model.n_observed_) / model.n_users
    liked = factors[row.indices]
    system = liked.T @ liked + model.regularization_coeff * scale * np.eye(factors.shape[1])
    system += model.gravity_coeff * scale * (factors.T @ factors) / len(factors)
    return _linear_fold_in_terms(factors, system, liked, values)


@_terms.register
def _(model: HybridRecommender, row: sp.csr_matrix) -> np.ndarray:
    binary = scale_plays(row, "binary")
    parts = [(1.0, _ease_terms(binary, model.items_, model.weights_, model.n_items))]
    if model.tags_ is not None and model.tag_weight:
        tags = sp.csr_matrix(model.tags_)
        liked = tags[row.indices]
        norm = np.sqrt((np.asarray(liked.sum(axis=0)) ** 2).sum())
        parts.append((model.tag_weight, (liked @ tags.T).toarray() / max(norm, 1e-12)))
    for weight, part in [(model.als_weight, model.als_), (model.rp3_weight, model.rp3_),
                         (model.binary_als_weight, model.binary_als_)]:
        if part is not None:
            parts.append((weight, _terms(part, row)))
    # The friends' terms need known friends: a new user folded in from likes has none.
    total = np.zeros((row.nnz, model.n_items))
    for weight, terms in parts:
        peak = np.abs(terms.sum(axis=0)).max(initial=0.0)
        total += weight * terms / max(peak, 1e-12)
    return total
