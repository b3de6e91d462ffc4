"""The bigger Last.fm releases (Last.fm-360K, LFM-1b): the pandas readers' aggregation and
identity rules, one-line errors naming file and line, format detection, and the Spark reader
giving the same matrix, names and errors (``scale fit`` end to end), all on generated files.

The Spark tests share the session of conftest.py: they skip with a reason without pyspark or
Java 17+, and fail in CI, which installs both.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lastfm_rec.data.formats import detect_format
from lastfm_rec.data.hetrec import DataError
from lastfm_rec.data.releases import (
    ReleaseError,
    load_lastfm_360k,
    load_lfm_1b,
    load_release,
)
from lastfm_rec.models import create

USERS = [hashlib.sha1(f"user {i}".encode()).hexdigest() for i in range(12)]
A, B, C = (str(uuid.UUID(int=n)) for n in (0xA1, 0xB2, 0xC3))


def write_lines(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + end for line in lines).encode("utf-8"))
    return path


def write_lfm_1b(folder: Path, events: list[str], artists: list[str]) -> Path:
    write_lines(folder / "LFM-1b_LEs.txt", events)
    write_lines(folder / "LFM-1b_artists.txt", artists)
    return folder


def random_360k(path: Path, seed: int, end: str = "\n") -> Path:
    """Lines with repeated pairs, names spelt several ways under one id, a name under two
    ids and without one, empty names, quotes and non-ASCII names."""
    rng = np.random.default_rng(seed)
    mbids = [str(uuid.UUID(int=int(rng.integers(1, 2**62)))) for _ in range(10)]
    artists = [(mbid, [f"Band {i}", f"band {i}", ""]) for i, mbid in enumerate(mbids)]
    artists += [(mbids[0], ["Shared"]), (mbids[1], ["Shared"]), ("", ["Shared"]),
                ("", ['"Weird Al" Yankovic']), ("", ["Sigur Rós"]), ("", ["Björk"])]
    lines = []
    for _ in range(400):
        mbid, names = artists[rng.integers(len(artists))]
        name = names[rng.integers(len(names))]
        lines.append(f"{USERS[rng.integers(len(USERS))]}\t{mbid}\t{name}\t{rng.integers(0, 900)}")
    return write_lines(path, lines, end)


def random_lfm_1b(folder: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    users, artists = rng.choice(10**6, 9, replace=False), rng.choice(10**7, 30, replace=False)
    events = [f"{users[rng.integers(9)]}\t{artists[rng.integers(25)]}\t{rng.integers(99)}\t"
              f"{rng.integers(999)}\t{1_360_000_000 + rng.integers(10**7)}" for _ in range(600)]
    names = [f"{artist}\tArtist «{i}»" for i, artist in enumerate(artists)]
    return write_lfm_1b(folder, events, [names[i] for i in rng.permutation(len(names))])


# --------------------------------------------------------------------------- pandas


def test_360k_sums_repeats_and_an_artist_is_its_mbid_else_its_name(tmp_path) -> None:
    u0, u1 = sorted(USERS[:2])
    path = write_lines(tmp_path / "usersha1-artmbid-artname-plays.tsv", [
        f"{u1}\t{A}\tthe band\t10",
        f"{u1}\t\tthe band\t5",     # no id: the name is the artist, apart from A
        f"{u0}\t{A}\tThe Band\t3",
        f"{u0}\t{B}\tthe band\t1",  # the same name under another id: another artist
        f"{u1}\t{A}\tthe band\t7",  # repeats u1's line of A: summed
        f"{u0}\t\tthe band\t2",
        f"{u0}\t{C}\t\t4",          # no name anywhere: shows its id
        f"{u0}\t{B}\tB-side\t1",    # B's names tie: the first in code-point order
    ])
    data = load_lastfm_360k(path)
    assert data.users.ids.tolist() == [u0, u1]
    assert data.artists.ids.tolist() == [A, B, C, "the band"]
    assert data.artist_names.tolist() == ["the band", "B-side", C, "the band"]
    np.testing.assert_array_equal(data.plays.toarray(), [[3, 2, 4, 2], [17, 0, 0, 5]])
    assert data.plays.dtype == np.float64 and data.plays.has_sorted_indices


def test_lfm_1b_counts_events_from_a_folder_or_the_events_file(tmp_path) -> None:
    folder = write_lfm_1b(tmp_path / "lfm", [
        "7\t30\t1\t1\t1385000000", "7\t30\t1\t2\t1385000001", "5\t30\t2\t3\t1385000002",
        "7\t4\t3\t4\t1385000003", "7\t30\t1\t1\t1385000004",
    ], ["4\tfour", "30\t\"thirty\"", "99\tnever played"])
    for source in (folder, folder / "LFM-1b_LEs.txt"):
        data = load_release(source)
        assert data.users.ids.tolist() == [5, 7] and data.artists.ids.tolist() == [4, 30]
        assert data.artist_names.tolist() == ["four", '"thirty"']
        np.testing.assert_array_equal(data.plays.toarray(), [[0, 1], [1, 3]])


def test_blocks_and_line_ends_do_not_change_the_result(tmp_path) -> None:
    whole = load_lastfm_360k(random_360k(tmp_path / "a.tsv", seed=1))
    assert whole.plays.sum() > 0 and whole.plays.nnz < 400  # repeated pairs were summed
    for data in (load_lastfm_360k(tmp_path / "a.tsv", block_bytes=100),
                 load_lastfm_360k(random_360k(tmp_path / "b.tsv", seed=1, end="\r\n"))):
        assert (data.plays != whole.plays).nnz == 0
        np.testing.assert_array_equal(data.artist_names, whole.artist_names)
        np.testing.assert_array_equal(data.artists.ids, whole.artists.ids)
    folder = random_lfm_1b(tmp_path / "lfm", seed=2)
    events = load_lfm_1b(folder)
    assert events.plays.sum() == 600
    assert (load_lfm_1b(folder, block_bytes=50).plays != events.plays).nnz == 0


def test_a_model_fits_a_release(tmp_path) -> None:
    data = load_release(random_360k(tmp_path / "plays.tsv", seed=3))
    model = create("als", factors=4, iterations=3).fit(data.plays, show_progress=False)
    ids, _ = model.recommend(0, data.plays[0], N=3)
    assert len(set(ids.tolist())) == 3 and not set(ids.tolist()) & set(data.plays[0].indices)


U = USERS[0]
#: (format, lines of the file that fails, its name, the failing line, what the error says).
MALFORMED_360K = [
    (f"{U}\t{A}\tx", 3, "has 3 tab-separated fields, expected 4"),
    ("", 3, "is blank"),
    (f"{U}\t{A}\tx\t-4", 3, "play count -4 is negative"),
    (f"{U}\t{A}\tx\t12a", 3, "play count '12a' is not a whole number"),
    (f"{U}\t{A}\tx\t9223372036854775808", 3, "play count '9223372036854775808' is not a whole"),
    (f"{U.upper()}\t{A}\tx\t1", 3, f"user {U.upper()!r} is not a SHA-1"),
    (f"{U}\tnot-an-id\tx\t1", 3, "artist id 'not-an-id' is neither empty nor a MusicBrainz id"),
    (f"{U}\t\t\t1", 3, "the artist has neither a MusicBrainz id nor a name"),
]
GOOD_360K = [f"{U}\t{A}\tx\t1", f"{U}\t\ty\t2"]


def malformed_cases(tmp_path: Path) -> list[tuple[str, Path, str, str]]:
    """``(format, input, file named in the error, expected error pattern)``."""
    cases = []
    for i, (line, number, says) in enumerate(MALFORMED_360K):
        path = write_lines(tmp_path / f"360k-{i}" / "plays.tsv", [*GOOD_360K, line, *GOOD_360K])
        cases.append(("lastfm-360k", path, path, f"line {number}: {re.escape(says)}"))
    events = ["1\t2\t3\t4\t5", "1\t3\t3\t4\t5"]
    artists = ["2\ttwo", "3\tthree"]
    for i, (bad_events, bad_artists, file, says) in enumerate([
        ([*events, "1\t2\t3\t4"], artists, "LFM-1b_LEs.txt",
         "line 3: has 4 tab-separated fields, expected 5"),
        ([*events, "x1\t2\t3\t4\t5"], artists, "LFM-1b_LEs.txt",
         "line 3: user id 'x1' is not a whole number"),
        ([*events, "1\t-2\t3\t4\t5"], artists, "LFM-1b_LEs.txt",
         "line 3: artist id -2 is negative"),
        (events, [*artists, "four\t4"], "LFM-1b_artists.txt",
         "line 3: artist id 'four' is not a whole number"),
        (events, [*artists, "9\tnine", "3\tthree again"], "LFM-1b_artists.txt",
         "line 4 repeats line 2 (artist id 3)"),
    ]):
        folder = write_lfm_1b(tmp_path / f"lfm-{i}", bad_events, bad_artists)
        cases.append(("lfm-1b", folder, folder / file, re.escape(says)))
    return cases


def test_malformed_lines_raise_one_line_naming_file_and_line(tmp_path) -> None:
    for kind, source, file, says in malformed_cases(tmp_path):
        with pytest.raises(ReleaseError) as caught:
            load_release(source, kind, block_bytes=40)  # the bad line is in a later block
        message = str(caught.value)
        assert re.fullmatch(rf"{re.escape(str(file))} {says}.*; (fix or delete the line|"
                            r"delete one of them)", message), message
        assert isinstance(caught.value, DataError) and isinstance(caught.value, ValueError)


def test_missing_files_and_unlisted_artists_are_one_line_errors(tmp_path) -> None:
    folder = write_lfm_1b(tmp_path / "lfm", ["1\t2\t3\t4\t5", "1\t8\t3\t4\t5"], ["2\ttwo"])
    with pytest.raises(ReleaseError, match=r"1 artists of .*LFM-1b_LEs\.txt have no line in "
                                           r".*LFM-1b_artists\.txt \(first artist id 8\)"):
        load_lfm_1b(folder)
    (folder / "LFM-1b_artists.txt").unlink()
    with pytest.raises(ReleaseError, match=r"LFM-1b_artists\.txt not found: LFM-1b is read"):
        load_lfm_1b(folder)
    with pytest.raises(ReleaseError, match="not found: check the path"):
        load_lastfm_360k(tmp_path / "missing.tsv")
    with pytest.raises(ReleaseError, match="has no listening lines"):
        load_lastfm_360k(write_lines(tmp_path / "empty.tsv", []))
    with pytest.raises(ValueError, match=r"is hetrec data, not a Last\.fm release"):
        load_release(tmp_path)


def test_the_format_is_told_by_the_path(tmp_path) -> None:
    plays = random_360k(tmp_path / "usersha1-artmbid-artname-plays.tsv", seed=0)
    other = write_lines(tmp_path / "mine.tsv", GOOD_360K)
    lfm = random_lfm_1b(tmp_path / "lfm", seed=0)
    assert [detect_format(p) for p in (plays, other, lfm, lfm / "LFM-1b_LEs.txt", tmp_path,
                                       tmp_path / "rows.parquet", tmp_path / "absent")] == [
        "lastfm-360k", "lastfm-360k", "lfm-1b", "lfm-1b", "hetrec", "parquet", "hetrec"]
    assert [detect_format(f"hdfs://head/data/{name}") for name in (
        "usersha1-artmbid-artname-plays.tsv", "plays.tsv", "lfm/LFM-1b_LEs.txt", "lfm",
        "rows.parquet/")] == ["lastfm-360k", "lastfm-360k", "lfm-1b", "hetrec", "parquet"]
    with pytest.raises(ValueError, match="has 3 tab-separated fields on line 1, not the 4"):
        detect_format(write_lines(tmp_path / "three.tsv", ["a\tb\tc"]))
    with pytest.raises(ValueError, match=r"cannot tell the format of .*plays\.txt"):
        detect_format(write_lines(tmp_path / "plays.txt", GOOD_360K))


# --------------------------------------------------------------------------- Spark


def _spark_matrix(prepared) -> sp.csr_matrix:
    rows = pd.DataFrame([row.asDict() for row in
                         prepared.ratings.select("u_id", "a_id", "weight").collect()])
    return sp.csr_matrix((rows["weight"].to_numpy(float), (rows["u_id"], rows["a_id"])),
                         shape=(prepared.n_users, prepared.n_artists))


@pytest.mark.spark
def test_spark_reads_the_releases_as_pandas_does(spark, tmp_path) -> None:
    from lastfm_rec.spark import preprocessing

    for source in (random_360k(tmp_path / "plays.tsv", seed=4, end="\r\n"),
                   random_lfm_1b(tmp_path / "lfm", seed=5)):
        expected = load_release(source)
        prepared = preprocessing.prepare(spark, str(source), remove_outliers=False)
        assert (_spark_matrix(prepared) != expected.plays).nnz == 0
        users = prepared.ratings.select("u_id", "userID").distinct().orderBy("u_id").collect()
        assert [row["userID"] for row in users] == expected.users.ids.tolist()
        artists = prepared.artists.orderBy("a_id").collect()
        assert [row["artistID"] for row in artists] == expected.artists.ids.tolist()
        assert [row["name"] for row in artists] == expected.artist_names.tolist()
        assert {row["top3_tags"] for row in artists} == {"none"}


@pytest.mark.spark
def test_spark_errors_are_the_pandas_errors_across_file_splits(spark, tmp_path) -> None:
    from lastfm_rec.spark import io

    cases = malformed_cases(tmp_path)
    padding = [f"{u}\t{A}\tx\t{n}" for n in range(5) for u in USERS]
    big = write_lines(tmp_path / "split.tsv", [*padding, f"{U}\t{A}\tx\t-1", *padding])
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1000")  # the bad line in split 5
    try:
        for kind, source, _file, _says in [cases[0], cases[2], cases[7], cases[-4], cases[-1],
                                           ("lastfm-360k", big, big, "")]:
            with pytest.raises(ReleaseError) as expected:
                load_release(source, kind)
            with pytest.raises(ReleaseError) as caught:
                io.read_release(spark, str(source), kind)
            assert str(caught.value) == str(expected.value)
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)
    assert "split.tsv line 61: play count -1 is negative" in str(caught.value)


@pytest.mark.spark
def test_scale_fit_reads_the_releases_end_to_end(spark, tmp_path, capsys) -> None:
    from lastfm_rec.serving.cli import main

    plays = random_360k(tmp_path / "plays.txt", seed=6)  # not a .tsv: --format tells
    lfm = random_lfm_1b(tmp_path / "lfm", seed=7)
    for source, options in ((plays, ["--format", "lastfm-360k"]), (lfm, [])):
        users, artists = load_release(source, *options[1:]).plays.shape
        out = tmp_path / f"out-{source.name}"
        assert main(["scale", "fit", "--input", str(source), "--out", str(out), "--factors",
                     "4", "--iterations", "2", *options]) == 0
        assert f"{users} users x {artists} artists (0 rows trimmed)" in capsys.readouterr().err
        assert any(out.iterdir())
    bad = write_lines(tmp_path / "bad.tsv", [*GOOD_360K, f"{U}\t{A}\tx\tmany"])
    assert main(["scale", "fit", "--input", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == (f"error: {bad} line 3: play count 'many' is not a whole "
                                       f"number from 0 to 9223372036854775807; fix or delete "
                                       "the line\n")


@pytest.mark.spark
def test_a_360k_model_folder_serves_its_artist_names_without_hetrec_data(
        spark, tmp_path, monkeypatch, capsys) -> None:
    """The issue's command on a file in the 360K format (told by its name), then the folder
    served for a sheet of that data's artist names, and for one of its users, with no HetRec
    folder anywhere."""
    import json

    from lastfm_rec.data.sheets import write_rec_sheet
    from lastfm_rec.serving import model_dir
    from lastfm_rec.serving.cli import main

    source = random_360k(tmp_path / "usersha1-artmbid-artname-plays.tsv", seed=8)
    release = load_release(source)
    out = tmp_path / "model-360k"
    assert main(["scale", "fit", "--input", str(source), "--out", str(out), "--factors", "4",
                 "--iterations", "3", "--top-n", "3"]) == 0
    monkeypatch.setenv("LASTFM_REC_DATA", str(tmp_path / "no-data"))
    monkeypatch.chdir(tmp_path)
    artists = model_dir.read_parquet(out / model_dir.ARTISTS_FILE).sort_values("a_id")
    assert artists["name"].tolist() == list(release.artist_names)
    listeners = np.diff(release.plays.tocsc().indptr)
    table = pd.DataFrame({"name": release.artist_names, "listeners": listeners})
    likes = ["Björk", '"Weird Al" Yankovic']
    sheet = write_rec_sheet(table, tmp_path / "likes.csv", n=len(table), likes=likes)
    capsys.readouterr()
    assert main(["recommend", "--model-file", str(out / model_dir.MODEL_FILE), "--likes",
                 str(sheet), "-k", "3", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    names = [row["name"] for row in answer["results"]]
    assert len(names) == 3 and set(names) <= set(release.artist_names)
    assert not set(names) & set(likes)
    user = USERS[0]
    assert main(["recommend", "--model-dir", str(out), "--user", user, "--json"]) == 0
    known = json.loads(capsys.readouterr().out)
    heard = set(release.plays[release.users.to_index(np.array([user]))[0]].indices.tolist())
    assert len(known["results"]) == min(3, release.plays.shape[1] - len(heard))
    assert not {row["a_id"] for row in known["results"]} & heard
