"""Parameters kept as scikit-learn keeps them, for every registered model: numpy-typed,
non-default values survive ``get_params``, ``set_params``, ``save``/``load`` and the serving
cache key."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from model_registry import SMALL, registered, use_extra

from lastfm_rec import models
from lastfm_rec.models.base import Recommender
from lastfm_rec.serving.cache import cache_key

NAMES = registered()
#: Other valid values of string parameters (numbers and booleans are changed generically).
OTHER_STRINGS = {"scaling": "raw", "weighting": "bm25", "fold_in": "similar-users",
                 "als__scaling": "binary", "binary_als__scaling": "raw", "rp3__scaling": "log1p"}


def numpy_typed_changes(name: str) -> dict:
    """A non-default value of every plain constructor parameter, as a numpy scalar."""
    changed = {}
    for key, value in {**models.create(name).saved_params(), **SMALL.get(name, {})}.items():
        if isinstance(value, bool):
            changed[key] = np.bool_(not value)
        elif isinstance(value, int):
            changed[key] = np.int64(value + 1)
        elif isinstance(value, float):
            changed[key] = np.float32(value * 0.5)
        elif isinstance(value, str) and key in OTHER_STRINGS:
            changed[key] = OTHER_STRINGS[key]
    return changed


def expected(changes: dict) -> dict:
    return {key: value.item() if isinstance(value, np.generic) else value
            for key, value in changes.items()}


def plays() -> sp.csr_matrix:
    rng = np.random.default_rng(3)
    matrix = sp.random(40, 30, density=0.3, random_state=rng, format="csr")
    matrix.data = np.ceil(matrix.data * 50)
    return matrix


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_is_reported(name):
    model = models.create(name)
    assert set(model.get_params()) == {*type(model)._param_names(),
                                       *type(model)._part_param_names()}
    json.dumps(model.saved_params())


@pytest.mark.parametrize("name", NAMES)
def test_numpy_typed_parameters_survive(name, tmp_path, request):
    use_extra(name, request)
    changes = numpy_typed_changes(name)
    if not changes:  # nothing to lose (popularity)
        assert models.create(name).get_params() == {}
        return
    model = models.create(name, **changes)
    params = model.get_params()
    for key, value in expected(changes).items():
        assert params[key] == value and type(params[key]) is type(value), key
    json.dumps(model.saved_params())  # plain Python types only

    model.fit(plays(), show_progress=False)
    model.save(tmp_path / "model.npz")
    loaded = Recommender.load(tmp_path / "model.npz")
    assert loaded.get_params() == params

    default = models.create(name, **SMALL.get(name, {}))
    assert cache_key("data", name, loaded) == cache_key("data", name, model)
    assert cache_key("data", name, model) != cache_key("data", name, default)


@pytest.mark.parametrize("name", NAMES)
def test_set_params(name):
    model = models.create(name)
    changes = numpy_typed_changes(name)
    assert model.set_params(**changes) is model
    assert {k: model.get_params()[k] for k in changes} == expected(changes)
    assert model.get_params() == models.create(name, **changes).get_params()
    with pytest.raises(ValueError, match="no parameter"):
        model.set_params(not_a_parameter=1)


def test_set_params_validates():
    with pytest.raises(ValueError, match="fold_in"):
        models.create("sgd-mf").set_params(fold_in="guess")


def test_side_data_is_a_parameter_and_saved(tmp_path):
    tags = sp.random(30, 6, density=0.5, random_state=np.random.default_rng(1), format="csr")
    model = models.create("hybrid", item_tags=tags, als__factors=4)
    assert model.get_params()["item_tags"] is tags
    assert "item_tags" not in model.saved_params()  # data, not part of the key
    model.fit(plays(), show_progress=False)
    model.save(tmp_path / "hybrid.npz")
    loaded = Recommender.load(tmp_path / "hybrid.npz")
    assert (loaded.get_params()["item_tags"] != tags).nnz == 0
    assert loaded.get_params()["user_friends"] is None


def test_the_hybrids_parts_take_nested_settings(tmp_path):
    tags = sp.random(30, 6, density=0.5, random_state=np.random.default_rng(1), format="csr")
    model = models.create("hybrid", item_tags=tags, als__factors=5, als__tag_weight=2.0,
                          binary_als_weight=0.5, binary_als__factors=3, rp3_weight=0.5,
                          rp3__K=7)
    assert model.get_params()["als__factors"] == 5 and model.als.factors == 5
    assert model.get_params()["binary_als__alpha"] == models.TUNED_BINARY["als"]["alpha"]
    model.set_params(als__regularization=2.0)
    assert (model.als.regularization, model.als.factors) == (2.0, 5)
    model.fit(plays(), show_progress=False)
    assert model.als_.item_factors.shape[1] == 5 and model.binary_als_.item_factors.shape[1] == 3
    assert model.als_.item_tags is tags and model.als_.tag_weight == 2.0
    assert np.diff(model.rp3_.similarity_.indptr).max() <= 7
    model.save(tmp_path / "hybrid.npz")
    loaded = Recommender.load(tmp_path / "hybrid.npz")
    assert loaded.saved_params() == model.saved_params()
    users = np.arange(10)
    np.testing.assert_array_equal(loaded.score_items(users, plays()[users]),
                                  model.score_items(users, plays()[users]))


@pytest.mark.parametrize("old, new", [("als_factors", "als__factors"),
                                      ("als_tag_weight", "als__tag_weight"),
                                      ("binary_als_alpha", "binary_als__alpha")])
def test_flat_part_names_are_refused_with_the_nested_name(old, new):
    with pytest.raises(ValueError, match=rf"no parameter\(s\) {old}: .* use {new}$"):
        models.create("hybrid", **{old: 8})
    with pytest.raises(ValueError, match=rf"use {new}$"):
        models.create("hybrid").set_params(**{old: 8})


@pytest.mark.parametrize("params", [{"als__not_a_setting": 1}, {"als__item_tags": None},
                                    {"nope__factors": 1}])
def test_unknown_nested_names_are_refused(params):
    with pytest.raises(ValueError, match=r"no parameter\(s\) .*; valid: .*als__factors"):
        models.create("hybrid", **params)
