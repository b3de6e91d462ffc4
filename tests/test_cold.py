"""Artists nobody has played yet (``lastfm_rec.evaluation.cold``) and the hybrid's
``cold_weight``, on small hand-made data."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
import scipy.sparse as sp

from lastfm_rec import models
from lastfm_rec.evaluation.cold import (
    COLD_WEIGHTS,
    cold_artist_effect,
    cold_artists,
    cold_recovered,
)
from lastfm_rec.evaluation.metrics import ndcg_at_k
from lastfm_rec.evaluation.ranking import evaluated_users, rank_users

N_USERS, N_ITEMS, N_TAGS = 40, 24, 6


def world(seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Plays of two taste groups over artists 0..19 (artists 20..23 never played) and
    tags: each group's artists, the unplayed ones included, carry their group's tag and one
    of two others of the group."""
    rng = np.random.default_rng(seed)
    group_user = np.arange(N_USERS) % 2
    group_item = np.arange(N_ITEMS) % 2
    played = (rng.random((N_USERS, N_ITEMS)) < 0.45) & (group_user[:, None] == group_item)
    played[:, 20:] = False
    played[np.arange(N_USERS), group_user] = True  # everyone plays something
    plays = sp.csr_matrix(played * rng.integers(1, 30, played.shape), dtype=np.float64)
    tags = np.zeros((N_ITEMS, N_TAGS))
    tags[np.arange(N_ITEMS), group_item * 3] = 1.0  # the group's own tag
    tags[np.arange(N_ITEMS), group_item * 3 + rng.integers(1, 3, N_ITEMS)] = 2.0
    return plays, sp.csr_matrix(tags)


def test_cold_artists_are_those_without_a_training_row():
    train = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 3.0]]))
    train.data[train.indices == 2] = 0.0  # a stored zero is not a play
    np.testing.assert_array_equal(cold_artists(train), [False, True, True])


def test_cold_recovered_counts_cold_rows_in_the_top_k():
    held_out = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 1]], dtype=float))
    cold = np.array([False, True, False, True])
    ranked = np.array([[1, 2, -1], [0, 2, 3]])
    assert cold_recovered(ranked, held_out, cold, k=3) == (2, 3 - 1)
    assert cold_recovered(ranked, held_out, cold, k=2) == (1, 2)  # artist 3 is third
    with pytest.raises(ValueError, match="ranked has 1 rows"):
        cold_recovered(ranked[:1], held_out, cold)


def test_cold_weight_zero_leaves_the_hybrid_unchanged_and_a_weight_ranks_cold_artists():
    plays, tags = world()
    settings = {"item_tags": tags, "als__factors": 4, "als__iterations": 3}
    default = models.create("hybrid", **settings).fit(plays, show_progress=False)
    weighted = models.create("hybrid", cold_weight=10.0, **settings).fit(
        plays, show_progress=False)
    users = np.arange(N_USERS)
    warm = ~cold_artists(plays)
    np.testing.assert_array_equal(default.score_items(users, plays)[:, warm],
                                  weighted.score_items(users, plays)[:, warm])
    default_ids, _ = default.recommend(users, plays, N=5)
    ids, _ = weighted.recommend(users, plays, N=5)
    assert np.isin(ids, np.arange(20, 24)).sum() > np.isin(default_ids, np.arange(20, 24)).sum()
    cold_ids = np.where(np.isin(ids, np.arange(20, 24)), ids, -1)
    assert (cold_ids >= 0).any(axis=1).all()  # every user is offered a cold artist
    # ... of their own group, found by its tags
    offered = cold_ids >= 0
    np.testing.assert_array_equal(cold_ids[offered] % 2, np.broadcast_to(
        users[:, None] % 2, ids.shape)[offered])


def test_cold_artist_effect_ranks_one_fit_twice():
    plays, tags = world(1)
    rng = np.random.default_rng(2)
    coo = plays.tocoo()
    test_mask = rng.random(coo.nnz) < 0.2
    to_csr = lambda keep: sp.csr_matrix(  # noqa: E731
        (coo.data[keep], (coo.row[keep], coo.col[keep])), shape=plays.shape)
    train, test = to_csr(~test_mask), to_csr(test_mask)
    model = models.create("hybrid", item_tags=tags, als__factors=4, als__iterations=3,
                          cold_weight=0.0).fit(train, show_progress=False)
    table = cold_artist_effect(model, train, test, cold_weight=3.0)
    assert list(table.index) == ["cold_weight 0", "cold_weight 3"]
    assert model.cold_weight == 0.0  # restored
    users = evaluated_users(test)
    ranked = rank_users(model, users, train[users], 10)
    assert table.loc["cold_weight 0", "ndcg@10"] == pytest.approx(
        ndcg_at_k(ranked, test[users], 10), abs=1e-12)
    cold_rows = table["cold rows"]
    assert (cold_rows == cold_recovered(ranked, test[users], cold_artists(train))[1]).all()
    assert table.loc["cold_weight 0", "recovered"] == 0
    per_user = table.attrs["per_user"]
    assert list(per_user.columns) == list(table.index) and len(per_user) == users.size
    np.testing.assert_allclose(per_user.mean().to_numpy(), table["ndcg@10"].to_numpy())


def test_notebook_06_ranks_cold_artists_with_the_weight_chosen_on_validation():
    path = Path(__file__).resolve().parent.parent / "notebooks" / "06_literature_protocol.ipynb"
    cell, = (c for c in nbformat.read(path, as_version=4).cells
             if "parameters" in c.metadata.get("tags", []))
    parameters: dict = {}
    exec(cell.source, parameters)  # a parameters cell holds literals only
    name, signals, settings = parameters["literature_runs"]["hybrid + cold artists (all signals)"]
    assert (name, signals) == ("hybrid", "all")
    assert settings == {"cold_weight": COLD_WEIGHTS["literature"]}
