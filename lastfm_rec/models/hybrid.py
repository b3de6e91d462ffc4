"""The package's best model: EASE and ALS that also read artist tags and the friend graph.

Three signals, each scaled per user to a maximum absolute value of 1 and summed:

1. **EASE with tag-aware item weights.** The item-item Gram matrix is ``X^T X`` plus
   ``tag_gram`` times the cosine similarity of the artists' tag vectors, so artists that
   share tags pull on each other even when few users played both. The user's input row is
   their own 0/1 plays plus ``friends`` times the mean 0/1 plays of their friends.
2. **Tag profile** (weight ``tag_weight``): cosine between the user's tag profile (sum of
   the tag vectors of the artists they played) and each artist's tag vector; it also reaches
   artists too rare for EASE.
3. **ALS** (weight ``als_weight``): implicit-feedback matrix factorisation
   (:class:`~lastfm_rec.models.als.ALSRecommender`, part ``als``: ``als__factors``,
   ``als__regularization``, ...), which folds new users in by least squares; with
   ``als__tag_weight`` the artists' tags enter its factorisation as pseudo-users
   (:func:`~lastfm_rec.models.als.tag_rows`).
4. **RP3beta** (weight ``rp3_weight``): the popularity-discounted random walk
   (:class:`~lastfm_rec.models.rp3beta.RP3betaRecommender`, part ``rp3``).
5. **Friends' artists** (weight ``social_weight``): the mean 0/1 plays of the user's
   friends, a direct social score.
6. **ALS on 0/1 input** (weight ``binary_als_weight``): a second ALS (part ``binary_als``,
   from the settings :data:`BINARY_ALS`) on the plays turned into 0/1, next to the one on
   play counts.
7. **Cold artists by their tags** (weight ``cold_weight``): artists with no training
   listener have no EASE, ALS or RP3beta score, so only the tag profile reaches them, at
   ``tag_weight`` against the sum of every part for the others; ``cold_weight`` adds their
   tag-profile score once more, with a weight of its own.

The parts are models of their own, configured with scikit-learn's nested parameter names
(``create("hybrid", als__factors=64)``, ``set_params(rp3__beta=0.2)``; the parts take the
hybrid's ``item_tags``) and fitted on the same plays; each is scored through
:meth:`~lastfm_rec.models.base.Recommender.score_items`.

Tag vectors are log(1 + times a tag was given) times the tag's IDF, L2-normalised. Build the
tag matrix without the held-out listens' own tags
(:meth:`lastfm_rec.data.matrices.StudyData.item_tags` with ``exclude``) so the tags a user
gave a held-out artist cannot leak the answer. A user folded in with ``recalculate_user=True`` is
treated as new: no friends.

Measured on the real data (validation NDCG@10 at the tuned setting, 0.1974): without the ALS
part 0.1860, without the tag profile 0.1929, without tags in the Gram matrix 0.1935,
without friends 0.1959; tuned ALS alone 0.1895, EASE alone 0.1727. On test: 0.2558 against
0.2457 for tuned ALS (paired difference 0.0101, standard error 0.0016 over 1877 users).

On 0/1 input with friends only (the literature protocol, :mod:`lastfm_rec.evaluation.literature`;
settings ``TUNED_BINARY["hybrid"]``), validation NDCG@10: 0.1823 for the blend of EASE,
ALS on 0/1 input (weight 1.5), RP3beta (0.2) and friends' artists (0.1); without ALS 0.1713,
without RP3beta 0.1819, without friends' artists 0.1815 (EASE alone 0.1701). With every
signal on that protocol (``lastfm_rec.evaluation.literature.PROTOCOL_SETTINGS``): the play-count
settings 0.1920; an ALS on 0/1 input (weight 0.4) next to the play-count ALS 0.1937; the
artists' tags inside the play-count ALS (``als__tag_weight`` 3, its weight 2, tag profile 0.3)
0.1955. RP3beta and friends' artists added nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from lastfm_rec.models.als import ALSRecommender
from lastfm_rec.models.base import (
    FitCallback,
    ModelFitError,
    Recommender,
    check_item_tags,
    scale_plays,
)
from lastfm_rec.models.ease import ease_weights, float32_product, modelled_items, weight_rows
from lastfm_rec.models.rp3beta import RP3betaRecommender
from lastfm_rec.ops import normalize_rows

#: ALS settings for 0/1 input, chosen on validation (``lastfm_rec.models.TUNED_BINARY``).
BINARY_ALS: dict[str, float | int | str] = {"factors": 64, "regularization": 30.0,
                                             "alpha": 20.0, "scaling": "binary"}


def tag_vectors(item_tags: sp.csr_matrix) -> sp.csr_matrix:
    """Rows of log(1 + count) x IDF, L2-normalised (artists without tags stay zero)."""
    weighted = sp.csr_matrix(item_tags, dtype=np.float64, copy=True)
    weighted.data = np.log1p(weighted.data)
    document_frequency = np.bincount(weighted.indices, minlength=weighted.shape[1])
    idf = np.log(weighted.shape[0] / np.maximum(document_frequency, 1))
    weighted = sp.csr_matrix(weighted @ sp.diags(idf))
    return normalize_rows(weighted)


def _scale_rows(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its largest absolute finite value (non-finite -> 0), in place:
    every caller passes a score block of its own (a third of the time of a copy per step)."""
    scores[~np.isfinite(scores)] = 0.0
    peak = np.abs(scores).max(axis=1, keepdims=True, initial=0.0)
    scores /= np.maximum(peak, 1e-12)
    return scores


class HybridRecommender(Recommender):
    """EASE + artist tags + friends (see the module docstring).

    Parameters
    ----------
    item_tags
        Artists x tags counts (CSR, one row per artist of the play matrix), or None to use no
        tags.
    user_friends
        Users x users 0/1 friendships (CSR, rows in the play matrix's user order), or None.
    l2
        EASE's ridge penalty.
    tag_gram
        Weight of tag cosine similarity added to the Gram matrix.
    friends
        Weight of the friends' mean plays added to a user's input row.
    tag_weight
        Weight of the tag-profile score in the blend.
    min_listeners
        Artists with fewer training listeners are left out of EASE (tags still reach them).
    als_weight
        Weight of the ALS part (0 leaves it out).
    rp3_weight
        Weight of the RP3beta part (0 leaves it out).
    social_weight
        Weight of the friends' mean 0/1 plays as a score of its own (0 leaves it out).
    binary_als_weight
        Weight of the ALS part on 0/1 input (0 leaves it out).
    cold_weight
        Weight of the tag-profile score added again for artists with no training listener
        (0: they get the tag profile's score only).
    **part_settings
        The parts' settings as ``<part>__<setting>``: ``als__*`` and ``binary_als__*``
        (:class:`~lastfm_rec.models.als.ALSRecommender`: ``factors``, ``regularization``,
        ``alpha``, ``iterations``, ``scaling``, ``random_state``, ``tag_weight``; the second
        starts from :data:`BINARY_ALS`), ``rp3__*``
        (:class:`~lastfm_rec.models.rp3beta.RP3betaRecommender`: ``alpha``, ``beta``, ``K``,
        ``scaling``). Any other name is a ``ValueError``.
    """

    name = "hybrid"
    iterative = True  # its ALS parts
    fit_hint = "a larger l2 or als__regularization"
    side_params = ("item_tags", "user_friends")
    parts: ClassVar[dict[str, type[Recommender]]] = {
        "als": ALSRecommender, "binary_als": ALSRecommender, "rp3": RP3betaRecommender}

    def __init__(self, item_tags: sp.csr_matrix | None = None,
                 user_friends: sp.csr_matrix | None = None, l2: float = 50.0,
                 tag_gram: float = 20.0, friends: float = 0.3, tag_weight: float = 0.4,
                 min_listeners: int = 2, als_weight: float = 1.0, rp3_weight: float = 0.0,
                 social_weight: float = 0.0, binary_als_weight: float = 0.0,
                 cold_weight: float = 0.0, **part_settings: Any) -> None:
        self.item_tags, self.user_friends = item_tags, user_friends
        self.l2, self.tag_gram, self.friends = l2, tag_gram, friends
        self.tag_weight, self.min_listeners = tag_weight, min_listeners
        self.als_weight, self.rp3_weight = als_weight, rp3_weight
        self.social_weight, self.binary_als_weight = social_weight, binary_als_weight
        self.cold_weight = cold_weight
        settings = self._part_settings(part_settings)
        self.als = ALSRecommender(**settings["als"])
        self.binary_als = ALSRecommender(**{**BINARY_ALS, **settings["binary_als"]})
        self.rp3 = RP3betaRecommender(**settings["rp3"])

    def _new_part(self, name: str) -> Recommender:
        """An unfitted copy of part ``name`` given this model's side data."""
        part = getattr(self, name)
        return type(part)(**{**part.get_params(),
                             **{key: getattr(self, key) for key in part.side_params}})

    def _fit_part(self, name: str, user_items: sp.csr_matrix, show_progress: bool,
                  callback: FitCallback | None) -> Recommender:
        try:
            return self._new_part(name).fit(user_items, show_progress=show_progress,
                                            callback=callback)
        except ModelFitError as error:
            raise ModelFitError(self._diverged(f"its {name} part's arrays")) from error

    def _fit(self, user_items: sp.csr_matrix, show_progress: bool = False,
             callback: FitCallback | None = None) -> None:
        check_item_tags(self)
        if self.user_friends is not None and self.user_friends.shape != (self.n_users,) * 2:
            raise ValueError(f"user_friends must be {self.n_users} x {self.n_users}, got "
                             f"{self.user_friends.shape}")
        self.items_ = modelled_items(self.item_listeners_, self.min_listeners)
        x = scale_plays(user_items, "binary")[:, self.items_]
        self.tags_ = None if self.item_tags is None else tag_vectors(self.item_tags)
        modelled = None if self.tags_ is None else self.tags_[self.items_]
        self.weights_ = ease_weights(x, self.l2, modelled, self.tag_gram)
        self.friend_plays_ = None
        if self.user_friends is not None and (self.friends or self.social_weight):
            degree = np.diff(sp.csr_matrix(self.user_friends).indptr)
            mean_friend = sp.diags(1.0 / np.maximum(degree, 1)) @ sp.csr_matrix(
                self.user_friends, dtype=np.float64)
            self.friend_plays_ = sp.csr_matrix(mean_friend @ scale_plays(user_items, "binary"))
        self.als_ = self._fit_part("als", user_items, show_progress, callback) if (
            self.als_weight) else None
        self.rp3_ = self._fit_part("rp3", user_items, False, None) if self.rp3_weight else None
        self.binary_als_ = self._fit_part("binary_als", user_items, show_progress, None) if (
            self.binary_als_weight) else None

    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        played = scale_plays(user_items, "binary")
        query = played[:, self.items_]
        social = None if self.friend_plays_ is None or recalculate_user else (
            self.friend_plays_[userids])
        if social is not None and self.friends:
            query = query + self.friends * social[:, self.items_]
        ease = np.zeros((userids.size, self.n_items))
        ease[:, self.items_] = float32_product(query, self.weights_)
        scores = _scale_rows(ease)
        if self.tags_ is not None and (self.tag_weight or self.cold_weight):
            profile = normalize_rows(sp.csr_matrix(played @ self.tags_))
            tag_scores = _scale_rows((profile @ self.tags_.T).toarray())
            scores += self.tag_weight * tag_scores
            cold = self.item_listeners_ == 0
            if self.cold_weight and cold.any():
                scores[:, cold] += self.cold_weight * tag_scores[:, cold]
        for weight, part in [(self.als_weight, self.als_),
                             (self.binary_als_weight, self.binary_als_),
                             (self.rp3_weight, self.rp3_)]:
            if part is not None:
                scores += weight * _scale_rows(
                    part.score_items(userids, user_items, recalculate_user))
        if social is not None and self.social_weight:
            scores += self.social_weight * _scale_rows(social.toarray())
        return scores

    def _item_scores(self, itemids: np.ndarray) -> np.ndarray:
        return weight_rows(self, itemids)

    def _state(self) -> dict:
        state = {"items_": self.items_, "weights_": self.weights_}
        if self.tags_ is not None:
            state["tags_"] = self.tags_
        if self.friend_plays_ is not None:
            state["friend_plays_"] = self.friend_plays_
        if self.als_ is not None:
            state["als_user_factors"] = self.als_.user_factors
            state["als_item_factors"] = self.als_.item_factors
        if self.rp3_ is not None:
            state["rp3_similarity"] = self.rp3_.similarity_
        if self.binary_als_ is not None:
            state["binary_als_user_factors"] = self.binary_als_.user_factors
            state["binary_als_item_factors"] = self.binary_als_.item_factors
        return state

    def _set_state(self, state: dict) -> None:
        self.tags_ = self.friend_plays_ = self.als_ = self.rp3_ = self.binary_als_ = None
        if "als_user_factors" in state:
            self.als_ = self._new_part("als")
            self.als_.n_users, self.als_.n_items = self.n_users, self.n_items
            self.als_.user_factors = state.pop("als_user_factors")
            self.als_.item_factors = state.pop("als_item_factors")
        if "binary_als_user_factors" in state:
            self.binary_als_ = self._new_part("binary_als")
            self.binary_als_.n_users, self.binary_als_.n_items = self.n_users, self.n_items
            self.binary_als_.user_factors = state.pop("binary_als_user_factors")
            self.binary_als_.item_factors = state.pop("binary_als_item_factors")
        if "rp3_similarity" in state:
            self.rp3_ = self._new_part("rp3")
            self.rp3_.n_users, self.rp3_.n_items = self.n_users, self.n_items
            self.rp3_.similarity_ = state.pop("rp3_similarity")
        super()._set_state(state)
