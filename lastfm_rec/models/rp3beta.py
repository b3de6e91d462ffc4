"""RP3beta (Paudel et al. 2017): three-step random walk user -> artist -> user -> artist,
with the arrival artist's popularity discounted by ``listeners ** beta``."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from lastfm_rec.models.base import ItemSimilarityRecommender, scale_plays
from lastfm_rec.ops import normalize_rows, top_k_per_row


def _row_stochastic(matrix: sp.csr_matrix, power: float) -> sp.csr_matrix:
    matrix = normalize_rows(sp.csr_matrix(matrix), "l1")
    matrix.data = matrix.data ** power
    return matrix


class RP3betaRecommender(ItemSimilarityRecommender):
    """Item-item transition probabilities ``P(i -> j)`` raised to ``alpha``, divided by
    ``listeners_j ** beta`` and kept to the top ``K`` per artist.

    Parameters
    ----------
    alpha, beta
        Transition sharpening and popularity discount.
    K
        Neighbours kept per artist.
    scaling
        How plays weight the walk (``"binary"`` or ``"log1p"``).
    """

    name = "rp3beta"

    def __init__(self, alpha: float = 0.75, beta: float = 0.3, K: int = 1000,
                 scaling: str = "binary") -> None:
        self.alpha, self.beta, self.K, self.scaling = alpha, beta, K, scaling

    def _fit(self, user_items: sp.csr_matrix) -> None:
        x = scale_plays(user_items, self.scaling)
        item_to_user = _row_stochastic(x.T, self.alpha)
        user_to_item = _row_stochastic(x, self.alpha)
        walk = sp.csr_matrix(item_to_user @ user_to_item)
        discount = np.power(np.maximum(self.item_listeners_, 1).astype(np.float64), -self.beta)
        walk = sp.csr_matrix(walk @ sp.diags(discount))
        walk.setdiag(0)
        self.similarity_ = top_k_per_row(walk, self.K)
