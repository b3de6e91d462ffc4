"""Serving recommendations: a trained model for the prepared data, cached between calls.

Owns what the command line needs beyond the library: the tables read from the data folder
once per command (:class:`ServingData`), fitting a registered model on all listening rows
(kept on disk by :mod:`lastfm_rec.serving.cache`), and turning a rec sheet's likes or an
artist name into a ranked table. A cached call imports neither TensorFlow nor trains anything.
Training a model is logged at ``INFO`` (logger ``lastfm_rec.serving.session``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lastfm_rec.data.hetrec import Dataset, load_dataset
from lastfm_rec.data.matrices import StudyData, load_study, side_data
from lastfm_rec.data.preprocessing import add_popularity_score, add_top_tags, reindex
from lastfm_rec.data.sheets import find_artist
from lastfm_rec.models import Recommender, create, side_params
from lastfm_rec.ops import reuse_results, top_n
from lastfm_rec.original.recommend import RESULT_COLUMNS, compute_scores
from lastfm_rec.serving.cache import cached_model
from lastfm_rec.serving.explain import because_you_like

_log = logging.getLogger(__name__)


@dataclass
class Session:
    """A fitted model with the tables needed to describe its answers.

    Attributes
    ----------
    artists
        Every listened artist in the model's item order (``a_id``), with ``artistID``,
        ``name``, ``top3_tags``, ``popularity_score`` and ``listeners`` (a model folder of
        data without names or tags has ``artistID``, ``popularity_score`` and ``listeners``).
    model
        The fitted recommender.
    model_name
        Its registry name.
    like_plays
        The play count each liked artist of a new user counts as: the median of the play
        counts the model was fitted on.
    """

    artists: pd.DataFrame
    model: Recommender
    model_name: str
    like_plays: float


@dataclass(frozen=True, eq=False)
class ServingData:
    """What serving reads from the data folder, read once per command.

    Attributes
    ----------
    study
        The play matrix and the side data a fit needs.
    artists
        :func:`describe_artists` of the data: what rec sheets are matched against and
        answers are described with.
    data_dir
        The folder it was read from (part of a cached model's key).
    """

    study: StudyData
    artists: pd.DataFrame
    data_dir: Path


def describe_artists(dataset: Dataset) -> pd.DataFrame:
    """Listened artists in the play matrix's order, with top tags and popularity."""
    tagged = add_top_tags(dataset.artists, dataset.user_tagged, dataset.tags)
    _, artists, _, _ = reindex(dataset.user_artists, tagged)
    return add_popularity_score(artists, dataset.user_artists)


def load_serving_data(data_dir: str | os.PathLike | None) -> ServingData:
    """Read the HetRec files in ``data_dir`` (default: found as ``load_dataset`` finds it)."""
    dataset = load_dataset(data_dir)
    return ServingData(load_study(dataset), describe_artists(dataset), dataset.data_dir)


def _serving_data(data: str | os.PathLike | ServingData | None) -> ServingData:
    return data if isinstance(data, ServingData) else load_serving_data(data)


def load_session(data: str | os.PathLike | ServingData | None, model_name: str) -> Session:
    """The named model fitted on every listening row, from the cache when it is there.

    ``data`` is the data folder, or what :func:`load_serving_data` read from it.
    """
    data = _serving_data(data)
    study = data.study

    def fit() -> Recommender:
        _log.info("training %s on %d listening rows (cached for next time) ...", model_name,
                  study.plays.nnz)
        model = create(model_name, **side_data(side_params(model_name), study, exclude=None))
        return model.fit(study.plays, show_progress=False)

    model = cached_model(data.data_dir, model_name, study.plays.shape, fit)
    return Session(data.artists, model, model_name, median_plays(study.plays))


def load_sessions(data: str | os.PathLike | ServingData | None,
                  model_names: Sequence[str]) -> dict[str, Session]:
    """:func:`load_session` of each name, reading the data once; models fitted here share
    equal parts (:func:`lastfm_rec.ops.reuse_results`: the hybrid's ALS part is the tuned
    ``als``, so loading both fits one ALS)."""
    data = _serving_data(data)
    with reuse_results():
        return {name: load_session(data, name) for name in model_names}


def load_model_file(data: str | os.PathLike | ServingData | None,
                    path: str | os.PathLike) -> Session:
    """A model saved with ``Recommender.save`` (e.g. by ``lastfm-rec scale fit``) with the
    tables of the data it was fitted on (its artist order must be the data's).

    ``data`` is the data folder, or what :func:`load_serving_data` read from it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {path} not found: write one with `lastfm-rec scale fit`")
    data = _serving_data(data)
    model = Recommender.load(path)
    if model.n_items != data.study.plays.shape[1]:
        raise ValueError(f"{path} scores {model.n_items} artists, the data has "
                         f"{data.study.plays.shape[1]}: fit it on this data folder (without "
                         "--trim-quantile)")
    return Session(data.artists, model, type(model).name, median_plays(data.study.plays))


def _item_vectors(model: Recommender, measure: str | None) -> np.ndarray | None:
    """The model's artist embeddings when a measure is asked for (else ``None``)."""
    if measure is None:
        return None
    vectors = model.item_vectors()
    if vectors is None:
        raise ValueError(f"--measure needs a model with artist embeddings; "
                         f"{type(model).name or type(model).__name__} has none "
                         "(leave --measure out to use the model's own scores)")
    return np.asarray(vectors, dtype=np.float64)


def median_plays(plays: sp.csr_matrix) -> float:
    """The median play count of a play matrix's entries (:attr:`Session.like_plays`)."""
    return float(np.median(plays.data))


def result_table(session: Session, ids: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """The artists ``ids`` (``a_id``) with their ``scores``, described by
    ``session.artists``: the columns of :data:`lastfm_rec.original.recommend.RESULT_COLUMNS`
    it has, in that order."""
    table = session.artists.iloc[ids].copy()
    table["a_id"] = ids
    table["score"] = scores
    return table[[c for c in RESULT_COLUMNS if c in table.columns]].reset_index(drop=True)


def likes_row(session: Session, liked: np.ndarray) -> sp.csr_matrix:
    """A new user's row: each liked artist played ``session.like_plays`` times (the median)."""
    liked = np.unique(np.asarray(liked, dtype=np.int64))
    return sp.csr_matrix((np.full(liked.size, session.like_plays),
                          (np.zeros(liked.size, int), liked)),
                         shape=(1, session.model.n_items))


def recommend_for_likes(session: Session, liked: np.ndarray, k: int = 10,
                        measure: str | None = None, explain: bool = False) -> pd.DataFrame:
    """The ``k`` best artists for a new user who likes ``liked`` (never the liked ones).

    ``measure=None`` ranks by the model's own scores; ``"dot"`` and ``"cosine"`` rank the
    folded-in user's embedding against the artist embeddings (embedding models only).
    ``explain=True`` adds ``because_you_like``: the (up to 3) liked artists that contributed
    most to each score (:func:`lastfm_rec.serving.explain.because_you_like`).
    """
    if np.unique(liked).size >= session.model.n_items:
        raise ValueError("nothing left to recommend: the sheet likes every artist")
    if explain and measure is not None:
        raise ValueError("--explain explains the model's own scores: leave --measure out")
    row = likes_row(session, liked)
    vectors = _item_vectors(session.model, measure)
    if vectors is None:
        ids, scores = session.model.recommend(0, row, N=k, recalculate_user=True)
        table = result_table(session, ids, scores)
        if explain:
            table["because_you_like"] = because_you_like(
                session.model, row, ids, session.artists["name"].to_numpy())
        return table
    user = session.model.user_vectors(row)[0]
    scores = compute_scores(user, vectors, measure)
    scores[row.indices] = -np.inf
    order, best = top_n(scores[None, :], k)
    keep = order[0] >= 0
    return result_table(session, order[0][keep], best[0][keep])


def artist_neighbors(session: Session, name: str, k: int = 5,
                     measure: str | None = None) -> pd.DataFrame:
    """The ``k`` artists most similar to a named one (itself first under the model's measure).

    ``attrs`` holds ``query`` (the matched name) and ``other_candidates``.
    """
    a_id, others = find_artist(name, session.artists)
    vectors = _item_vectors(session.model, measure)
    if vectors is None:
        ids, scores = session.model.similar_items(a_id, N=k)
    else:
        ids, scores = (row[0] for row in top_n(
            compute_scores(vectors[a_id], vectors, measure)[None, :], k))
    table = result_table(session, ids, scores)
    table.attrs.update(query=str(session.artists["name"].iloc[a_id]), other_candidates=others)
    return table
