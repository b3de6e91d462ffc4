"""``lastfm_rec.ops.profiled``: silent without ``$LASTFM_REC_PROFILE``, one JSON line per
timed block with it, nested blocks named by their callers."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import scipy.sparse as sp

from lastfm_rec import models
from lastfm_rec.ops import PROFILE_ENV, profiled


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_nothing_is_written_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with profiled("fit"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_each_block_appends_one_line_with_its_callers(tmp_path, monkeypatch):
    path = tmp_path / "profile.jsonl"
    path.write_text(json.dumps({"label": "earlier", "path": "earlier", "seconds": 1.0,
                                "cpu_seconds": 1.0}) + "\n")
    monkeypatch.setenv(PROFILE_ENV, str(path))
    with profiled("outer"):
        with profiled("inner"):
            time.sleep(0.02)
        with profiled("inner"):
            pass
    lines = _lines(path)
    assert [(r["label"], r["path"]) for r in lines] == [
        ("earlier", "earlier"), ("inner", "outer / inner"), ("inner", "outer / inner"),
        ("outer", "outer")]
    assert lines[1]["seconds"] >= 0.02 and lines[3]["seconds"] >= lines[1]["seconds"]
    assert all(r["cpu_seconds"] >= 0 for r in lines)


def test_a_failing_block_is_timed_and_its_error_kept(tmp_path, monkeypatch):
    path = tmp_path / "profile.jsonl"
    monkeypatch.setenv(PROFILE_ENV, str(path))
    with pytest.raises(ZeroDivisionError), profiled("outer"), profiled("broken"):
        1 / 0  # noqa: B018
    with profiled("after"):
        pass
    assert [r["path"] for r in _lines(path)] == ["outer / broken", "outer", "after"]


def test_a_fit_and_its_parts_are_profiled(tmp_path, monkeypatch):
    path = tmp_path / "profile.jsonl"
    monkeypatch.setenv(PROFILE_ENV, str(path))
    plays = sp.random(40, 30, density=0.2, format="csr", random_state=np.random.default_rng(0))
    models.create("hybrid", als__factors=4, als__iterations=2).fit(plays, show_progress=False)
    paths = [r["path"] for r in _lines(path)]
    assert paths == ["fit hybrid / EASE solve", "fit hybrid / fit als", "fit hybrid"]
