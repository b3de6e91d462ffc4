"""Explanations reproduce the model's own scores: the liked artists' terms add up to them."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from lastfm_rec import models
from lastfm_rec.data.matrices import load_study, side_data
from lastfm_rec.serving.explain import because_you_like, check_explainable, contributions

ALS_SMALL = {"factors": 16, "regularization": 1.0, "alpha": 2.0, "iterations": 10}
HYBRID_SMALL = {"als__factors": 16, "als__regularization": 1.0, "als__alpha": 2.0, "l2": 20.0,
                "min_listeners": 1}
CASES = {
    "item-knn": ("item-knn", {"K": 50}),
    "item-knn log1p": ("item-knn", {"K": 50, "scaling": "log1p"}),
    "rp3beta": ("rp3beta", {}),
    "ease": ("ease", {"l2": 20.0}),
    "als": ("als", ALS_SMALL),
    "hybrid": ("hybrid", HYBRID_SMALL),
    "hybrid+side": ("hybrid", {**HYBRID_SMALL, "side": True}),
    "hybrid, no ALS": ("hybrid", {**HYBRID_SMALL, "als_weight": 0.0, "side": True}),
    "hybrid, every part": ("hybrid", {**HYBRID_SMALL, "side": True, "rp3_weight": 0.3,
                                      "binary_als_weight": 0.4, "social_weight": 0.2}),
    "sgd-mf": ("sgd-mf", {"embedding_dim": 6, "num_iterations": 200}),
}
# ALS folds users in and scores in float32; sgd-mf solves with lstsq; the others sum exactly.
RELATIVE_TOLERANCE = {"als": 1e-4, "hybrid": 1e-4, "sgd-mf": 1e-6}


@pytest.fixture(scope="module")
def study(synthetic_dir):
    return load_study(synthetic_dir)


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request, study):
    name, params = CASES[request.param]
    params = dict(params)
    if params.pop("side", False):
        params.update(side_data(models.side_params(name), study, exclude=None))
    return name, models.create(name, **params).fit(study.plays, show_progress=False)


def new_user(study, seed: int = 3) -> sp.csr_matrix:
    """Six of the ten most listened artists, with play counts from 1 to 900."""
    rng = np.random.default_rng(seed)
    popular = np.argsort(-np.diff(study.plays.tocsc().indptr), kind="stable")[:10]
    liked = np.sort(rng.choice(popular, 6, replace=False))
    counts = rng.integers(1, 900, liked.size).astype(np.float64)
    return sp.csr_matrix((counts, (np.zeros(liked.size, int), liked)),
                         shape=(1, study.plays.shape[1]))


def test_contributions_add_up_to_the_models_scores(fitted, study) -> None:
    name, model = fitted
    row = new_user(study)
    ids, scores = model.recommend(0, row, N=model.n_items, filter_already_liked_items=False,
                                  recalculate_user=True)
    terms = contributions(model, row)
    assert terms.shape == (row.nnz, model.n_items)
    assert np.any(terms != 0)
    np.testing.assert_allclose(terms.sum(axis=0)[ids], scores,
                               rtol=RELATIVE_TOLERANCE.get(name, 1e-9),
                               atol=1e-6 * np.abs(scores).max())


def test_als_terms_are_implicits_explanation(study) -> None:
    model = models.create("als", **ALS_SMALL).fit(study.plays)
    row = new_user(study)
    reference = AlternatingLeastSquares(factors=model.factors, alpha=model.alpha,
                                        regularization=model.regularization)
    reference.user_factors, reference.item_factors = model.user_factors, model.item_factors
    scaled = sp.csr_matrix(row, copy=True)
    scaled.data = np.log1p(scaled.data)  # the model's scaling
    terms = contributions(model, row)
    for item in (0, 7, 42):
        total, top, _ = reference.explain(0, scaled, item, N=row.nnz)
        position = {a_id: r for r, a_id in enumerate(row.indices)}
        for a_id, value in top:
            assert terms[position[a_id], item] == pytest.approx(value, rel=1e-4, abs=1e-7)
        assert terms[:, item].sum() == pytest.approx(total, rel=1e-4, abs=1e-7)


def test_because_you_like_names_the_largest_positive_terms() -> None:
    # Three artists; item-item similarity: artist 2 is close to 0, far from 1.
    plays = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [0, 1, 0], [1, 1, 1]], float))
    model = models.create("item-knn", K=10, shrink=0.0).fit(plays)
    row = sp.csr_matrix(np.array([[3.0, 5.0, 0.0]]))
    terms = contributions(model, row)
    assert terms[0, 2] > terms[1, 2] > 0
    names = np.array(["A", "B", "C"])
    assert because_you_like(model, row, np.array([2]), names) == [["A", "B"]]
    assert because_you_like(model, row, np.array([2]), names, n=1) == [["A"]]


@pytest.mark.parametrize(("name", "params", "shown"), [
    ("popularity", {}, "popularity"),
    ("random", {}, "random"),
    ("sgd-mf", {"fold_in": "similar-users"}, "sgd-mf (fold_in='similar-users')"),
])
def test_models_without_terms_per_liked_artist_are_refused(name, params, shown) -> None:
    with pytest.raises(ValueError, match=re.escape(f"model {shown} has no per-artist")):
        check_explainable(models.create(name, **params))
    for explained in ("item-knn", "rp3beta", "ease", "als", "hybrid", "sgd-mf"):
        check_explainable(models.create(explained))


def test_bad_rows_are_refused(study) -> None:
    model = models.create("item-knn", K=50).fit(study.plays)
    with pytest.raises(ValueError, match="must be a 1 x 400 CSR matrix"):
        contributions(model, study.plays[:2])
    with pytest.raises(RuntimeError, match="not fitted"):
        contributions(models.create("ease"), study.plays[:1])
