"""Item-based nearest neighbours: a user's score for an artist sums its similarity to the
artists they played."""

from __future__ import annotations

import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight, tfidf_weight

from lastfm_rec.models.base import ItemSimilarityRecommender, scale_plays
from lastfm_rec.ops import row_norms, top_k_per_row


class ItemKNNRecommender(ItemSimilarityRecommender):
    """Item-item cosine similarity, kept to each artist's ``K`` nearest neighbours.

    Parameters
    ----------
    K
        Neighbours kept per artist.
    weighting
        How artist vectors (over users) are weighted before the cosine: ``"cosine"`` (log1p
        play counts), ``"bm25"`` or ``"tfidf"`` (``implicit.nearest_neighbours`` weightings of
        the raw counts).
    shrink
        Added to the cosine's denominator, damping similarities from few co-listeners.
    scaling
        How a user's plays weight their artists at scoring time (``"binary"``, ``"log1p"``,
        ``"raw"``).
    """

    name = "item-knn"

    def __init__(self, K: int = 3000, weighting: str = "cosine", shrink: float = 10.0,
                 scaling: str = "binary", bm25_k1: float = 100.0, bm25_b: float = 0.8) -> None:
        self.K, self.weighting, self.shrink, self.scaling = K, weighting, shrink, scaling
        self.bm25_k1, self.bm25_b = bm25_k1, bm25_b

    def _fit(self, user_items: sp.csr_matrix) -> None:
        item_users = sp.csr_matrix(user_items.T)
        if self.weighting == "cosine":
            weighted = scale_plays(item_users, "log1p")
        elif self.weighting == "bm25":
            weighted = sp.csr_matrix(bm25_weight(item_users, K1=self.bm25_k1, B=self.bm25_b))
        elif self.weighting == "tfidf":
            weighted = sp.csr_matrix(tfidf_weight(item_users))
        else:
            raise ValueError(f"unknown weighting {self.weighting!r}; use cosine, bm25 or tfidf")
        norms = row_norms(weighted)
        gram = sp.csr_matrix(weighted @ weighted.T)
        gram.setdiag(0)
        coo = gram.tocoo()
        coo.data = coo.data / (norms[coo.row] * norms[coo.col] + self.shrink + 1e-12)
        self.similarity_ = top_k_per_row(coo.tocsr(), self.K)
