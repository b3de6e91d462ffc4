"""A user's ``implicit`` code runs unchanged on the package's models.

:func:`user_code` is written against ``implicit`` 0.7 only (its evaluation, ``recommend``
with ``items=`` to re-rank candidates, ``similar_users``, ``similar_items``, ``save``/
``load``). It runs on ``implicit``'s own ALS and, unchanged, on every registered model.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from implicit.als import AlternatingLeastSquares
from implicit.evaluation import ranking_metrics_at_k
from model_registry import registered, use_extra
from threadpoolctl import threadpool_limits

from lastfm_rec import models
from lastfm_rec.data.matrices import load_study
from lastfm_rec.evaluation.ranking import evaluate
from lastfm_rec.evaluation.splits import holdout_split

#: sgd-mf's default 2000 gradient steps and the graph models' up to 1000 epochs are slow for
#: a test; everything else is the default.
FEWER_STEPS = {"sgd-mf": {"num_iterations": 200},
               "lightgcn": {"epochs": 20, "eval_every": 10},
               "social-lightgcn": {"epochs": 20, "eval_every": 10}}


def user_code(model, train, test):
    """Plain ``implicit`` usage: fit, evaluate, re-rank a candidate list, find neighbours."""
    model.fit(train, show_progress=False)
    metrics = ranking_metrics_at_k(model, train, test, K=10, show_progress=False)

    user = 0
    liked = train[user].indices[:2]
    candidates = np.concatenate([liked, np.setdiff1d(np.arange(20), liked)[:8]])
    reranked, scores = model.recommend(user, train[user], N=len(candidates), items=candidates)

    try:
        neighbours, _ = model.similar_users(user, N=5)
    except NotImplementedError:
        neighbours = None
    similar, _ = model.similar_items(3, N=5)

    saved = io.BytesIO()
    model.save(saved)
    saved.seek(0)
    again = type(model).load(saved)
    same, _ = again.recommend(user, train[user], N=len(candidates), items=candidates)
    return metrics, candidates, liked, reranked, scores, neighbours, similar, same


@pytest.fixture(scope="module")
def split(synthetic_dir):
    return holdout_split(load_study(synthetic_dir).plays, seed=1)


def check(result) -> None:
    metrics, candidates, liked, reranked, scores, neighbours, similar, same = result
    assert set(metrics) >= {"precision", "map", "ndcg", "auc"}
    assert 0 < metrics["ndcg"] <= 1
    assert len(reranked) == len(candidates) and set(reranked) == set(candidates)
    assert set(reranked[-len(liked):]) == set(liked)  # what the user played comes last
    assert np.all(np.diff(scores) <= 0)
    assert neighbours is None or neighbours[0] == 0
    assert similar[0] == 3
    np.testing.assert_array_equal(reranked, same)


def test_on_implicit_itself(split):
    with threadpool_limits(1, "blas"):
        check(user_code(AlternatingLeastSquares(factors=16, random_state=1), *split))


@pytest.mark.parametrize("name", registered())
def test_on_every_registered_model(name, split, request):
    use_extra(name, request)
    train, test = split
    model = models.create(name, **FEWER_STEPS.get(name, {}))
    result = user_code(model, train, test)
    check(result)
    if model.personalised:
        assert result[5] is not None  # similar_users answered
    # implicit's NDCG@10 and the package's are the same definition
    assert result[0]["ndcg"] == pytest.approx(evaluate(model, train, test, K=(10,))["ndcg@10"])
