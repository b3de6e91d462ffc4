"""Hyperparameter search on validation NDCG@10, and the whole ranking study in one call.

Owns the search spaces (:data:`SEARCH_SPACES`), the search (:func:`tune`: coordinate ascent
from the registry defaults, the full grid, or ``n_trials`` settings drawn from the grid with a
seeded generator) and :func:`run_study`, which
splits the real data, tunes every model on a validation set carved from training, refits the
chosen settings on the whole training part and reports on the test part, which is never used
for selection. The registry defaults in :mod:`lastfm_rec.models` are the values this search
chose on the real data with seed 42 (:data:`lastfm_rec.models.TUNED`); the whole study takes
about 20 minutes on two cores. Each trial's and each model's result is logged at ``INFO``
(logger ``lastfm_rec.evaluation.tuning``); ``show_progress`` adds tqdm bars.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from lastfm_rec import models
from lastfm_rec.data.matrices import StudyData, load_study, side_data
from lastfm_rec.evaluation.metrics import ndcg_per_user
from lastfm_rec.evaluation.ranking import evaluate, evaluate_new_users, evaluated_users
from lastfm_rec.evaluation.splits import holdout_split, new_user_split
from lastfm_rec.ops import profiled, reuse_results, reused_seconds

_log = logging.getLogger(__name__)

#: name -> {parameter: candidate values}; the grids searched on the real data.
SEARCH_SPACES: dict[str, dict[str, Sequence[Any]]] = {
    "item-knn": {"K": [100, 300, 1000, 3000], "weighting": ["cosine", "bm25", "tfidf"],
                 "shrink": [0.0, 10.0]},
    "rp3beta": {"alpha": [0.5, 0.75, 1.0], "beta": [0.0, 0.1, 0.2, 0.3],
                "K": [100, 300, 1000]},
    "als": {"factors": [64, 128, 256], "regularization": [10.0, 30.0, 100.0, 300.0],
            "alpha": [1.0, 2.0, 5.0, 10.0], "scaling": ["log1p"]},
    "ease": {"l2": [25.0, 50.0, 100.0, 200.0, 400.0], "scaling": ["binary", "log1p"]},
    "hybrid": {"l2": [50.0, 100.0, 200.0], "tag_gram": [0.0, 5.0, 20.0],
               "friends": [0.0, 0.3, 1.0], "tag_weight": [0.0, 0.2, 0.4, 0.7],
               "als_weight": [0.0, 0.5, 1.0, 2.0]},
    "sgd-mf": {"embedding_dim": [10, 32], "regularization_coeff": [0.2, 0.02, 1.0],
               "gravity_coeff": [0.5, 0.0, 5.0]},
}

#: How :func:`run_study` searches each space: the whole grid where fits are cheap,
#: coordinate ascent where they are not.
STRATEGIES: dict[str, str] = {"item-knn": "grid", "rp3beta": "grid", "als": "grid",
                              "ease": "grid", "hybrid": "coordinate", "sgd-mf": "coordinate"}

#: The plainly configured ``implicit`` ALS the best model is compared with.
PLAIN_ALS: dict[str, Any] = {"factors": 64, "regularization": 0.05, "alpha": 1.0,
                             "iterations": 15, "scaling": "log1p"}


@dataclass
class TuningResult:
    """One model's search: every trial (parameters, validation NDCG@10, fit seconds) and
    the best parameters."""

    name: str
    trials: pd.DataFrame
    best_params: dict[str, Any]
    best_score: float


def grid(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the candidate values, in a fixed order."""
    keys = list(space)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(space[k] for k in keys))]


def tune(name: str, fit_part: sp.csr_matrix, validation: sp.csr_matrix,
         space: Mapping[str, Sequence[Any]] | None = None, strategy: str = "coordinate",
         n_trials: int | None = None, seed: int = 0, side: Mapping[str, Any] | None = None,
         k: int = 10, passes: int = 2, show_progress: bool = False) -> TuningResult:
    """Search ``space`` for the settings of model ``name`` with the best validation NDCG@k.

    Strategies: ``"coordinate"`` starts from the registry defaults (or each parameter's first
    candidate), then changes one parameter at a time to each of its candidates, keeping a
    change when it raises the score, for up to ``passes`` sweeps; ``"grid"`` tries every
    combination, or ``n_trials`` of them drawn without replacement with
    ``numpy.random.default_rng(seed)``. Ties keep the earlier setting.

    Parameters
    ----------
    name
        A registered model name (:func:`lastfm_rec.models.create`).
    fit_part, validation
        The training part models are fitted on and the held-out listens they are scored on
        (:func:`lastfm_rec.evaluation.splits.holdout_split` of the training matrix). Never pass
        test.
    space
        ``{parameter: candidates}``; default :data:`SEARCH_SPACES` ``[name]``.
    n_trials
        Try this many settings drawn from the grid without replacement
        (``numpy.random.default_rng(seed)``); None tries the whole grid.
    side
        Extra constructor arguments passed to every trial (e.g. ``item_tags``).
    show_progress
        Show a tqdm bar counting the trials.
    """
    space = SEARCH_SPACES[name] if space is None else space
    if strategy not in ("coordinate", "grid"):
        raise ValueError(f"unknown strategy {strategy!r}; use 'coordinate' or 'grid'")
    rows: list[dict[str, Any]] = []
    scores: dict[str, float] = {}
    with profiled(f"tune {name}"), tqdm(desc=f"tuning {name}", unit="trial",
                                        disable=not show_progress) as bar:

        def score(params: dict[str, Any]) -> float:
            key = repr(sorted(params.items()))
            if key not in scores:
                model = models.create(name, **params, **dict(side or {}))
                started = time.perf_counter()
                model.fit(fit_part, show_progress=False)
                fit_seconds = time.perf_counter() - started
                scores[key] = evaluate(model, fit_part, validation, K=(k,))[f"ndcg@{k}"]
                rows.append({**params, f"val_ndcg@{k}": scores[key],
                             "fit_seconds": fit_seconds})
                _log.info("%s %s val ndcg@%d=%.4f (%.1fs)", name, params, k, scores[key],
                          fit_seconds)
                bar.update()
            return scores[key]

        if strategy == "coordinate":
            best, best_score = _coordinate_ascent(name, space, passes, score)
        else:
            best, best_score = _grid_search(space, n_trials, seed, score)
    return TuningResult(name, pd.DataFrame(rows), dict(best), float(best_score))



def _coordinate_ascent(name: str, space: Mapping[str, Sequence[Any]], passes: int,
                       score: Callable[[dict[str, Any]], float]) -> tuple[dict[str, Any], float]:
    """From the registry defaults (or each first candidate), one parameter at a time."""
    defaults = models.create(name).get_params()
    best = {key: defaults[key] if defaults.get(key) in values else values[0]
            for key, values in space.items()}
    best_score = score(best)
    for _ in range(passes):
        improved = False
        for key, values in space.items():
            for value in values:
                trial = {**best, key: value}
                if score(trial) > best_score:
                    best, best_score, improved = trial, score(trial), True
        if not improved:
            break
    return best, best_score


def _grid_search(space: Mapping[str, Sequence[Any]], n_trials: int | None, seed: int,
                 score: Callable[[dict[str, Any]], float]) -> tuple[dict[str, Any], float]:
    """Every combination, or ``n_trials`` of them drawn with ``default_rng(seed)``."""
    candidates = grid(space)
    if n_trials is not None and n_trials < len(candidates):
        picked = np.random.default_rng(seed).choice(len(candidates), n_trials, replace=False)
        candidates = [candidates[i] for i in sorted(picked)]
    best, best_score = candidates[0], score(candidates[0])
    for params in candidates[1:]:
        if score(params) > best_score:
            best, best_score = params, score(params)
    return best, best_score

def _fit_and_evaluate(model: models.Recommender, train: sp.csr_matrix,
                      test: sp.csr_matrix) -> tuple[dict[str, float], np.ndarray]:
    """:func:`evaluate` after fitting, with ``fit_seconds`` the fit's time alone (a part
    reused from an earlier fit, :func:`lastfm_rec.ops.reuse_results`, counts the seconds it
    took then), and each evaluated user's NDCG@10 (:data:`PER_USER_K`)."""
    started, reused = time.perf_counter(), reused_seconds()
    model.fit(train, show_progress=False)
    fit_seconds = time.perf_counter() - started + reused_seconds() - reused
    row, ranked = evaluate(model, train, test, return_ranked=True)
    users = evaluated_users(test)
    return {**row, "fit_seconds": fit_seconds}, ndcg_per_user(ranked, test[users], PER_USER_K)


#: The cut-off of the per-user scores :func:`run_study` keeps (:attr:`StudyResult.per_user`).
PER_USER_K = 10


@dataclass
class StudyResult:
    """What :func:`run_study` measured."""

    test: pd.DataFrame
    """Test metrics, one row per model (tuned settings refitted on the whole training part)."""
    new_users: pd.DataFrame
    """Metrics for users held out of training, folded in from half their artists."""
    per_user: pd.DataFrame
    """Each test user's NDCG@10 (:data:`PER_USER_K`), one column per model of ``test``: what
    :func:`lastfm_rec.evaluation.significance.paired_comparison` compares."""
    tuning: dict[str, TuningResult] = field(default_factory=dict)
    fitted: dict[str, models.Recommender] = field(default_factory=dict)
    """The test table's models named in ``run_study(keep=...)``, fitted on the training part."""
    split: tuple[sp.csr_matrix, sp.csr_matrix] | None = None
    """``(train, test)`` of the test table."""


def study_models() -> list[str]:
    """The models :func:`run_study` compares by default: every registered one but those
    needing an install extra (``models.EXTRAS``) and the slow graph models (``models.SLOW``)."""
    return [name for name in models.available()
            if name not in models.EXTRAS and name not in models.SLOW]


def run_study(data: StudyData | str | os.PathLike | None = None,
              names: Sequence[str] | None = None, seed: int = 42, tuned: bool = True,
              new_user_models: Sequence[str] = ("hybrid", "als", "plain-als", "item-knn",
                                                "popularity", "sgd-mf",
                                                "sgd-mf-similar-users"),
              show_progress: bool = False, keep: Sequence[str] = ()) -> StudyResult:
    """The ranking study: split, tune on validation, refit on training, report on test.

    ``train, test = holdout_split(X, seed=seed)``; ``fit_part, validation =
    holdout_split(train, seed=seed + 1)``. With ``tuned=True`` each model in ``names``
    (default: :func:`study_models`) with a search space is tuned with :func:`tune`
    (:data:`STRATEGIES`); otherwise the registry defaults are used. The hybrid's ALS part
    takes the tuned ALS settings. Tag side data always leaves out the tags of the held-out
    pairs of the set being scored. The test table also has ``plain-als``
    (:data:`PLAIN_ALS`); its fits share equal parts (:func:`lastfm_rec.ops.reuse_results`:
    the hybrid's ALS part is the tuned ALS), and each ``fit_seconds`` counts a shared part's
    seconds as if fitted alone. The new-user table holds 10% of users out of training
    (:func:`new_user_split`, seed ``seed``), folds in half of each one's artists and scores
    the other half; ``sgd-mf-similar-users`` is the original's similar-users heuristic on the
    sgd-mf embeddings. ``show_progress`` shows a tqdm bar per search and per table; the
    test table's models named in ``keep`` are returned fitted (``StudyResult.fitted``).
    """
    if not isinstance(data, StudyData):
        data = load_study(data)
    if names is None:
        names = study_models()
    names = list(names)
    plays = data.plays
    train, test = holdout_split(plays, seed=seed)
    fit_part, validation = holdout_split(train, seed=seed + 1)
    held = validation + test  # tags of these pairs are unknown while tuning

    tuning: dict[str, TuningResult] = {}
    chosen: dict[str, dict[str, Any]] = {name: {} for name in names}
    order = sorted(names, key=lambda n: n == "hybrid")  # ALS first: the hybrid reuses it
    for name in order:
        if not (tuned and name in SEARCH_SPACES):
            continue
        fixed: dict[str, Any] = {}
        if name == "hybrid" and "als" in chosen:
            fixed = {f"als__{key}": value for key, value in chosen["als"].items()}
        side = side_data(models.side_params(name), data, held)
        tuning[name] = tune(name, fit_part, validation, strategy=STRATEGIES.get(name, "grid"),
                            seed=seed, side={**side, **fixed}, show_progress=show_progress)
        chosen[name] = {**tuning[name].best_params, **fixed}

    runs = {name: (name, chosen[name]) for name in names}
    runs["plain-als"] = ("als", PLAIN_ALS)
    runs["sgd-mf-similar-users"] = ("sgd-mf", {**chosen.get("sgd-mf", {}),
                                               "fold_in": "similar-users"})
    rows, per_user, fitted = {}, {}, {}
    with reuse_results():  # the hybrid's ALS part is the als run: one fit, timed for both
        for label in tqdm([*names, "plain-als"], desc="test", disable=not show_progress):
            name, params = runs[label]
            model = models.create(name, **params,
                                  **side_data(models.side_params(name), data, test))
            with profiled(f"test {label}"):
                metrics, per_user[label] = _fit_and_evaluate(model, train, test)
                rows[label] = {**metrics, "params": repr(params)}
            if label in keep:
                fitted[label] = model
            _log.info("test %s: ndcg@10=%.4f", label, rows[label]["ndcg@10"])
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    per_user_table = pd.DataFrame(per_user, index=pd.Index(
        evaluated_users(test), name="user"))

    new_train, given, hidden, new_ids = new_user_split(plays, seed=seed)
    keep = np.setdiff1d(np.arange(plays.shape[0]), new_ids)
    to_find = hidden.tocoo()  # the new users' artists to find, in the full user order
    hidden_full = sp.csr_matrix((to_find.data, (new_ids[to_find.row], to_find.col)),
                                shape=plays.shape)
    new_rows = {}
    with reuse_results():  # the hybrid's ALS part is the als run (no fit times here)
        for label in tqdm([label for label in new_user_models
                           if label in runs and runs[label][0] in names],
                          desc="new users", disable=not show_progress):
            name, params = runs[label]
            side = side_data(models.side_params(name), data, hidden_full, users=keep)
            model = models.create(name, **params, **side)
            with profiled(f"new users {label}"):
                model.fit(new_train, show_progress=False)
                new_rows[label] = evaluate_new_users(model, given, hidden)
            _log.info("new users %s: ndcg@10=%.4f", label, new_rows[label]["ndcg@10"])
    new_users = pd.DataFrame.from_dict(new_rows, orient="index")
    new_users.index.name = "model"
    return StudyResult(test=table, new_users=new_users, per_user=per_user_table, tuning=tuning,
                       fitted=fitted, split=(train, test))
