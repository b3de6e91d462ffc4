"""Which differences between models are real: paired comparisons over the same users.

Two models evaluated on the same held-out listens give one score per user each; their
difference is paired by user. :func:`paired_comparison` reports, for every model against a
reference, the mean difference with a bootstrap confidence interval (users resampled with
replacement, ``scipy.stats.bootstrap``, BCa) and two paired tests from ``scipy.stats``: the
Wilcoxon signed-rank test (no assumption on the differences' distribution; users whose two
scores are equal drop out, as the test defines) and the paired t-test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

#: Resamples of the bootstrap: the interval's ends move by well under 1e-4 between seeds.
BOOTSTRAP_RESAMPLES = 2000


def paired_comparison(per_user: pd.DataFrame, reference: str, confidence: float = 0.95,
                      seed: int = 0, n_resamples: int = BOOTSTRAP_RESAMPLES) -> pd.DataFrame:
    """Each model (a column of ``per_user``, one row per user) against ``reference``.

    Parameters
    ----------
    per_user
        Users x models: each model's score of each user (e.g. NDCG@10), the same users in
        every column.
    reference
        The column the others are compared with (e.g. the best model).
    confidence
        Level of the bootstrap interval; a difference ``holds`` when the interval excludes
        0 and both tests give ``p < 1 - confidence``.
    seed
        Seed of the bootstrap's resampling.

    Returns
    -------
    pandas.DataFrame
        One row per other model: ``mean``, ``difference`` (its mean minus the reference's),
        ``ci_low``, ``ci_high``, ``wilcoxon_p``, ``ttest_p``, ``holds`` and ``users``.
    """
    if reference not in per_user.columns:
        raise ValueError(f"reference {reference!r} is not a column of per_user "
                         f"({', '.join(map(str, per_user.columns))})")
    if per_user.isna().to_numpy().any():
        raise ValueError("per_user has missing scores: every model must score every user")
    base = per_user[reference].to_numpy(dtype=np.float64)
    rows = {}
    for offset, name in enumerate(c for c in per_user.columns if c != reference):
        scores = per_user[name].to_numpy(dtype=np.float64)
        rows[name] = {"mean": float(scores.mean()),
                      **_paired(scores, base, confidence, seed + offset, n_resamples),
                      "users": int(scores.size)}
    return pd.DataFrame.from_dict(rows, orient="index")


def _paired(scores: np.ndarray, base: np.ndarray, confidence: float, seed: int,
            n_resamples: int) -> dict[str, float | bool]:
    """The interval and tests of one model's per-user scores against the reference's."""
    difference = scores - base
    mean = float(difference.mean())
    if not np.any(difference != difference[0]):  # constant: nothing to resample or rank
        low = high = mean
        wilcoxon_p = ttest_p = 1.0 if mean == 0 else 0.0
    else:
        interval = stats.bootstrap((difference,), np.mean, n_resamples=n_resamples,
                                   confidence_level=confidence, method="BCa",
                                   rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(interval.low), float(interval.high)
        wilcoxon_p = float(stats.wilcoxon(difference).pvalue) if np.any(difference) else 1.0
        ttest_p = float(stats.ttest_rel(scores, base).pvalue)
    alpha = 1.0 - confidence
    holds = bool((low > 0 or high < 0) and wilcoxon_p < alpha and ttest_p < alpha)
    return {"difference": mean, "ci_low": low, "ci_high": high, "wilcoxon_p": wilcoxon_p,
            "ttest_p": ttest_p, "holds": holds}
