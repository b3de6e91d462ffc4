"""The non-personalised baselines: most listened artists first, and a random ranking."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from lastfm_rec.models.base import Recommender


class PopularityRecommender(Recommender):
    """Ranks artists by their number of listeners in training (ties to the lower id).

    The same list for everyone (minus what each user already played); ``recalculate_user``
    changes nothing.
    """

    name = "popularity"
    personalised = False

    def _fit(self, user_items: sp.csr_matrix) -> None:
        pass  # the base class keeps item_listeners_

    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        return np.broadcast_to(self.item_listeners_.astype(np.float64),
                               (userids.size, self.n_items))


class RandomRecommender(Recommender):
    """A seeded random ranking per user: the chance level every metric is compared with.

    User ``u`` always gets the same order (drawn from ``default_rng([seed, u])``), so
    batched and single calls agree.
    """

    name = "random"
    personalised = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _fit(self, user_items: sp.csr_matrix) -> None:
        pass

    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        return np.stack([np.random.default_rng([self.seed, int(u) & 0x7FFFFFFF]).random(
            self.n_items) for u in userids]) if userids.size else np.zeros((0, self.n_items))
