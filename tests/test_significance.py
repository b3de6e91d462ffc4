"""Paired comparisons of models over the same users (lastfm_rec.evaluation.significance)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from lastfm_rec.evaluation.metrics import ndcg_at_k, ndcg_per_user
from lastfm_rec.evaluation.significance import paired_comparison


@pytest.fixture()
def scores() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    best = rng.random(800)
    return pd.DataFrame({"best": best,
                         "worse": best - 0.05 + 0.1 * rng.standard_normal(800),
                         "same": best + 0.1 * rng.standard_normal(800),
                         "copy": best.copy()})


def test_a_real_difference_holds_and_noise_does_not(scores) -> None:
    table = paired_comparison(scores, "best", seed=1)
    assert list(table.index) == ["worse", "same", "copy"]
    worse, same, copy = table.loc["worse"], table.loc["same"], table.loc["copy"]
    assert worse["holds"] and worse["ci_high"] < 0 and worse["ci_low"] < -0.05 < worse["ci_high"]
    assert not same["holds"] and same["ci_low"] < 0 < same["ci_high"]
    assert (copy["difference"], copy["ci_low"], copy["ci_high"], copy["wilcoxon_p"],
            copy["ttest_p"], copy["holds"]) == (0.0, 0.0, 0.0, 1.0, 1.0, False)
    assert (table["users"] == 800).all()


def test_the_tests_are_scipys_and_the_interval_is_seeded(scores) -> None:
    table = paired_comparison(scores, "best", seed=1)
    difference = scores["worse"] - scores["best"]
    assert table.loc["worse", "difference"] == pytest.approx(difference.mean(), rel=1e-12)
    assert table.loc["worse", "wilcoxon_p"] == stats.wilcoxon(difference).pvalue
    assert table.loc["worse", "ttest_p"] == stats.ttest_rel(scores["worse"],
                                                            scores["best"]).pvalue
    again = paired_comparison(scores, "best", seed=1)
    pd.testing.assert_frame_equal(table, again)
    other = paired_comparison(scores, "best", seed=2)
    assert other.loc["worse", "ci_low"] != table.loc["worse", "ci_low"]
    assert other.loc["worse", "ci_low"] == pytest.approx(table.loc["worse", "ci_low"], abs=2e-3)


def test_bad_input_is_named(scores) -> None:
    with pytest.raises(ValueError, match="reference 'nope' is not a column"):
        paired_comparison(scores, "nope")
    scores.loc[3, "same"] = np.nan
    with pytest.raises(ValueError, match="missing scores"):
        paired_comparison(scores, "best")


def test_per_user_ndcg_is_what_ndcg_at_k_averages() -> None:
    rng = np.random.default_rng(0)
    held_out = sp.random(50, 40, density=0.1, format="csr", random_state=rng)
    held_out = held_out[np.diff(held_out.indptr) > 0]
    ranked = np.argsort(rng.random((held_out.shape[0], 40)), axis=1)[:, :10]
    per_user = ndcg_per_user(ranked, held_out, 10)
    assert per_user.shape == (held_out.shape[0],)
    assert ((per_user >= 0) & (per_user <= 1)).all() and per_user.max() > 0
    assert per_user.mean() == ndcg_at_k(ranked, held_out, 10)
