"""Loaders, data-folder search and verification in lastfm_rec.data.hetrec."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lastfm_rec.data import hetrec as data
from lastfm_rec.data.hetrec import (
    CHECKSUMS,
    OPTIONAL_FILES,
    REQUIRED_FILES,
    DataDifferenceWarning,
    DataError,
    Dataset,
    find_data_dir,
    load_artists,
    load_dataset,
    load_tags,
    load_user_artists,
    load_user_friends,
    load_user_tagged,
    load_user_tagged_timestamps,
    verify_data,
)

Loader = Callable[[str | Path | None], pd.DataFrame]

# loader, file, columns, integer columns
TABLES: list[tuple[Loader, str, list[str], list[str]]] = [
    (load_artists, "artists.dat", ["artistID", "name", "url", "pictureURL"], ["artistID"]),
    (load_tags, "tags.dat", ["tagID", "tagValue"], ["tagID"]),
    (load_user_artists, "user_artists.dat", ["userID", "artistID", "weight"],
     ["userID", "artistID", "weight"]),
    (load_user_friends, "user_friends.dat", ["userID", "friendID"], ["userID", "friendID"]),
    (load_user_tagged, "user_taggedartists.dat",
     ["userID", "artistID", "tagID", "day", "month", "year"],
     ["userID", "artistID", "tagID", "day", "month", "year"]),
]
TABLE_IDS = [file for _, file, _, _ in TABLES]


def checksums_of(folder: Path) -> dict[str, tuple[int, str]]:
    """The (bytes, sha256) table of the required files in ``folder``."""
    return {name: ((folder / name).stat().st_size,
                   hashlib.sha256((folder / name).read_bytes()).hexdigest())
            for name in REQUIRED_FILES}


def one_line(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message and "\r" not in message
    return message


def rewrite_line(path: Path, line_number: int, edit: Callable[[str], str]) -> None:
    """Replace line ``line_number`` (1-based, header = 1) of a UTF-8/ASCII file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line_number - 1] = edit(lines[line_number - 1])
    path.write_text("\n".join(lines), encoding="utf-8")


@pytest.fixture
def broken_dir(synthetic_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic data set that a test may damage."""
    return Path(shutil.copytree(synthetic_dir, tmp_path / "copy"))


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    return monkeypatch


def make_folder(path: Path, files: tuple[str, ...] = REQUIRED_FILES) -> Path:
    """A folder that holds (empty) files of these names: enough for find_data_dir."""
    path.mkdir(parents=True)
    for name in files:
        (path / name).touch()
    return path


# --------------------------------------------------------------------------- loaders


@pytest.mark.parametrize(("loader", "file", "columns", "integers"), TABLES, ids=TABLE_IDS)
def test_loader_columns_and_dtypes(synthetic_dir: Path, loader: Loader, file: str,
                                   columns: list[str], integers: list[str]) -> None:
    frame = loader(synthetic_dir)
    assert list(frame.columns) == columns
    n_lines = (synthetic_dir / file).read_bytes().count(b"\n")
    assert len(frame) == n_lines - 1  # every line but the header
    for column in columns:
        if column in integers:
            assert frame[column].dtype == np.int64, column
        else:
            assert pd.api.types.is_string_dtype(frame[column]), column
    assert isinstance(frame.index, pd.RangeIndex)


def test_latin1_tag_round_trips(synthetic_dir: Path) -> None:
    assert b"\t\xe9lectro\n" in (synthetic_dir / "tags.dat").read_bytes()  # really Latin-1
    tags = load_tags(synthetic_dir)
    assert tags.loc[tags["tagID"] == 1, "tagValue"].item() == "électro"


def test_artist_names_keep_quotes_and_utf8(synthetic_dir: Path) -> None:
    raw = (synthetic_dir / "artists.dat").read_bytes()
    names = set(load_artists(synthetic_dir)["name"])
    assert "Beyoncé Tribute" in names
    assert b'\t"Weird" Ensemble\t' in raw  # raw quotes, as in the real artists.dat
    assert '"Weird" Ensemble' in names


def test_quotes_are_data_not_quoting(broken_dir: Path) -> None:
    # As in the real file: a name that starts with a quote and holds a tab-free rest.
    rewrite_line(broken_dir / "artists.dat", 3,
                 lambda line: line.replace(line.split("\t")[1], '"Weird Al" Yankovic'))
    rewrite_line(broken_dir / "artists.dat", 4,
                 lambda line: line.replace(line.split("\t")[1], 'Say "Hi'))
    artists = load_artists(broken_dir)
    assert artists["name"].iloc[1:3].tolist() == ['"Weird Al" Yankovic', 'Say "Hi']
    assert len(artists) == 400


def test_only_empty_picture_url_becomes_nan(synthetic_dir: Path) -> None:
    artists = load_artists(synthetic_dir)
    lines = (synthetic_dir / "artists.dat").read_text(encoding="utf-8").splitlines()[1:]
    empty = [line.endswith("\t") for line in lines]
    assert sum(empty) > 0
    assert artists["pictureURL"].isna().tolist() == empty
    assert artists[["artistID", "name", "url"]].notna().all().all()


def test_timestamps_absent_gives_none(synthetic_dir: Path) -> None:
    assert not (synthetic_dir / OPTIONAL_FILES[0]).exists()
    assert load_user_tagged_timestamps(synthetic_dir) is None


def test_timestamps_present_are_loaded(broken_dir: Path) -> None:
    (broken_dir / OPTIONAL_FILES[0]).write_text(
        "userID\tartistID\ttagID\ttimestamp\n2\t52\t13\t1238536800000\n3\t7\t1\t1\n")
    stamps = load_user_tagged_timestamps(broken_dir)
    assert stamps is not None
    assert list(stamps.columns) == ["userID", "artistID", "tagID", "timestamp"]
    assert (stamps.dtypes == np.int64).all()
    assert stamps["timestamp"].tolist() == [1238536800000, 1]


def test_crlf_line_endings_are_accepted(broken_dir: Path, synthetic_dir: Path) -> None:
    path = broken_dir / "user_friends.dat"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    pd.testing.assert_frame_equal(load_user_friends(broken_dir), load_user_friends(synthetic_dir))


def test_load_dataset(synthetic_dir: Path, no_env: pytest.MonkeyPatch) -> None:
    dataset = load_dataset(synthetic_dir)
    assert dataset.data_dir == synthetic_dir
    pd.testing.assert_frame_equal(dataset.user_artists, load_user_artists(synthetic_dir))
    assert len(dataset.artists) == 400
    assert dataset.user_tagged_timestamps is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset.tags = dataset.artists  # type: ignore[misc]


def test_load_dataset_download_uses_fetch_data(synthetic_dir: Path,
                                               no_env: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def fake_fetch(data_dir: object = None) -> Path:
        calls.append(data_dir)
        return synthetic_dir

    no_env.setattr(data, "fetch_data", fake_fetch)
    assert isinstance(load_dataset(download=True), Dataset)
    assert calls == [None]


# --------------------------------------------------------------------------- finding


def test_default_data_dir_in_checkout() -> None:
    project = Path(data.__file__).resolve().parents[2]
    assert (project / "pyproject.toml").is_file()
    assert data.default_data_dir() == project / "data" / "hetrec2011-lastfm-2k"


def test_default_data_dir_outside_checkout(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    installed = tmp_path / "site-packages" / "lastfm_rec" / "data"
    installed.mkdir(parents=True)
    monkeypatch.setattr(data, "__file__", str(installed / "hetrec.py"))
    monkeypatch.chdir(tmp_path)
    assert data.default_data_dir() == tmp_path / "data" / "hetrec2011-lastfm-2k"


@pytest.fixture
def three_dirs(tmp_path: Path, no_env: pytest.MonkeyPatch) -> dict[str, Path]:
    dirs = {name: make_folder(tmp_path / name) for name in ("explicit", "env", "default")}
    no_env.setattr(data, "default_data_dir", lambda: dirs["default"])
    return dirs


def test_find_prefers_explicit(three_dirs: dict[str, Path],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(three_dirs["env"]))
    assert find_data_dir(three_dirs["explicit"]) == three_dirs["explicit"]
    assert find_data_dir(str(three_dirs["explicit"])) == three_dirs["explicit"]


def test_find_prefers_env_over_default(three_dirs: dict[str, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(three_dirs["env"]))
    assert find_data_dir() == three_dirs["env"]


def test_find_falls_back_to_default(three_dirs: dict[str, Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_data_dir() == three_dirs["default"]
    monkeypatch.setenv(data.ENV_VAR, "")  # an empty variable counts as unset
    assert find_data_dir() == three_dirs["default"]


def test_find_incomplete_default_gives_none(three_dirs: dict[str, Path]) -> None:
    (three_dirs["default"] / "tags.dat").unlink()
    assert find_data_dir() is None


def test_find_incomplete_explicit_raises(three_dirs: dict[str, Path]) -> None:
    (three_dirs["explicit"] / "tags.dat").unlink()
    (three_dirs["explicit"] / "user_friends.dat").unlink()
    with pytest.raises(DataError) as excinfo:
        find_data_dir(three_dirs["explicit"])
    message = one_line(excinfo)
    assert str(three_dirs["explicit"]) in message
    assert "tags.dat, user_friends.dat" in message
    assert "artists.dat" not in message
    assert "lastfm-rec data" in message


def test_find_missing_explicit_raises(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="does not exist") as excinfo:
        find_data_dir(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in one_line(excinfo)


def test_find_incomplete_env_raises(three_dirs: dict[str, Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (three_dirs["env"] / "user_artists.dat").unlink()
    monkeypatch.setenv(data.ENV_VAR, str(three_dirs["env"]))
    with pytest.raises(DataError) as excinfo:
        find_data_dir()
    message = one_line(excinfo)
    assert "LASTFM_REC_DATA" in message and "user_artists.dat" in message
    assert str(three_dirs["env"]) in message


def test_loader_without_data_says_what_to_run(tmp_path: Path,
                                              no_env: pytest.MonkeyPatch) -> None:
    no_env.setattr(data, "default_data_dir", lambda: tmp_path / "empty")
    for loader in (load_artists, load_user_tagged_timestamps, load_dataset):
        with pytest.raises(DataError) as excinfo:
            loader()
        message = one_line(excinfo)
        assert "lastfm-rec data" in message and "LASTFM_REC_DATA" in message


def test_loader_finds_env_folder(synthetic_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(synthetic_dir))
    pd.testing.assert_frame_equal(load_tags(), load_tags(synthetic_dir))


# --------------------------------------------------------------------------- bad input


def test_missing_file(broken_dir: Path) -> None:
    (broken_dir / "user_friends.dat").unlink()
    with pytest.raises(DataError) as excinfo:
        load_user_friends(broken_dir)
    message = one_line(excinfo)
    assert str(broken_dir / "user_friends.dat") in message
    assert "not found" in message and "`lastfm-rec data`" in message


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["empty", "blank"])
def test_empty_file(broken_dir: Path, content: bytes) -> None:
    (broken_dir / "tags.dat").write_bytes(content)
    with pytest.raises(DataError) as excinfo:
        load_tags(broken_dir)
    message = one_line(excinfo)
    assert "tags.dat is empty" in message and "lastfm-rec data" in message


def test_header_only(broken_dir: Path) -> None:
    (broken_dir / "user_friends.dat").write_text("userID\tfriendID\n")
    with pytest.raises(DataError, match="no rows") as excinfo:
        load_user_friends(broken_dir)
    assert "user_friends.dat" in one_line(excinfo)


def test_missing_column(broken_dir: Path) -> None:
    rewrite_line(broken_dir / "user_artists.dat", 1, lambda line: line.replace("weight", "plays"))
    with pytest.raises(DataError) as excinfo:
        load_user_artists(broken_dir)
    message = one_line(excinfo)
    assert "user_artists.dat" in message
    assert "lacks column weight" in message
    assert "plays" in message  # what was found instead


@pytest.mark.parametrize("bad", ["12x", "", "2.5", "99999999999999999999", "inf"])
def test_non_integer_weight_names_line(broken_dir: Path, bad: str) -> None:
    rewrite_line(broken_dir / "user_artists.dat", 17,
                 lambda line: line.rsplit("\t", 1)[0] + "\t" + bad)
    with pytest.raises(DataError) as excinfo:
        load_user_artists(broken_dir)
    message = one_line(excinfo)
    assert "user_artists.dat line 17:" in message
    assert f"column weight has {bad!r}" in message


def test_first_bad_value_across_columns(broken_dir: Path) -> None:
    path = broken_dir / "user_taggedartists.dat"
    rewrite_line(path, 40, lambda line: line.rsplit("\t", 1)[0] + "\tlate")
    rewrite_line(path, 30, lambda line: "x" + line)  # userID, earlier line: reported first
    with pytest.raises(DataError) as excinfo:
        load_user_tagged(broken_dir)
    message = one_line(excinfo)
    assert "line 30: column userID" in message and "line 40" not in message


def test_non_integer_artist_id(broken_dir: Path) -> None:
    rewrite_line(broken_dir / "artists.dat", 5, lambda line: "five" + line[line.index("\t"):])
    with pytest.raises(DataError) as excinfo:
        load_artists(broken_dir)
    assert "artists.dat line 5: column id has 'five'" in one_line(excinfo)


@pytest.mark.parametrize(
    ("line_number", "edit", "expected"),
    [
        (9, lambda line: line + "\t7", "line 9 has 4 fields, expected 3"),
        (12, lambda line: line.rsplit("\t", 1)[0], "line 12 has 2 fields, expected 3"),
        (2, lambda line: line + "\t7", "line 2 has 4 fields, expected 3"),
        (20, lambda line: "", "line 20 is blank, expected 3"),
    ],
    ids=["extra", "short", "extra-first-row", "blank"],
)
def test_wrong_field_count(broken_dir: Path, line_number: int, edit: Callable[[str], str],
                           expected: str) -> None:
    rewrite_line(broken_dir / "user_artists.dat", line_number, edit)
    with pytest.raises(DataError) as excinfo:
        load_user_artists(broken_dir)
    message = one_line(excinfo)
    assert "user_artists.dat" in message and expected in message


def test_invalid_utf8_names_line(broken_dir: Path) -> None:
    path = broken_dir / "artists.dat"
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b"Artist", b"Art\xffist", 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError) as excinfo:
        load_artists(broken_dir)
    message = one_line(excinfo)
    assert "artists.dat is not valid utf-8 on line 5" in message


# --------------------------------------------------------------------------- verifying


def test_verify_passes_with_matching_checksums(synthetic_dir: Path) -> None:
    verify_data(synthetic_dir, checksums_of(synthetic_dir))


def test_verify_ignores_absent_optional_file(synthetic_dir: Path) -> None:
    checksums = {**checksums_of(synthetic_dir), OPTIONAL_FILES[0]: (10, "0" * 64)}
    verify_data(synthetic_dir, checksums)


def test_verify_hash_mismatch(broken_dir: Path) -> None:
    checksums = checksums_of(broken_dir)
    path = broken_dir / "user_friends.dat"
    content = path.read_bytes()
    last_digit = b"8" if content[-2:-1] == b"9" else b"9"
    path.write_bytes(content[:-2] + last_digit + b"\n")  # same size, different bytes
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError) as excinfo:
        verify_data(broken_dir, checksums)
    message = one_line(excinfo)
    assert "user_friends.dat" in message
    assert actual in message and checksums["user_friends.dat"][1] in message
    assert "delete" in message and "lastfm-rec data" in message


def test_verify_size_mismatch(broken_dir: Path) -> None:
    checksums = checksums_of(broken_dir)
    with (broken_dir / "tags.dat").open("ab") as handle:
        handle.write(b"999\tx\n")
    size = checksums["tags.dat"][0]
    with pytest.raises(DataError) as excinfo:
        verify_data(broken_dir, checksums)
    assert f"tags.dat in {broken_dir} has {size + 6} bytes, expected {size}" in one_line(excinfo)


def test_verify_missing_required(broken_dir: Path) -> None:
    checksums = checksums_of(broken_dir)
    (broken_dir / "artists.dat").unlink()
    with pytest.raises(DataError) as excinfo:
        verify_data(broken_dir, checksums)
    assert f"artists.dat missing in {broken_dir}" in one_line(excinfo)


def test_verify_synthetic_against_real_checksums(synthetic_dir: Path) -> None:
    with pytest.raises(DataError, match="expected") as excinfo:
        verify_data(synthetic_dir)
    one_line(excinfo)


def test_checksum_table_covers_required_files() -> None:
    assert set(CHECKSUMS) == set(REQUIRED_FILES)
    assert all(len(digest) == 64 for _, digest in CHECKSUMS.values())


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("loader", "shape"),
    [(load_artists, (17632, 4)), (load_tags, (11946, 2)), (load_user_artists, (92834, 3)),
     (load_user_friends, (25434, 2)), (load_user_tagged, (186479, 6))],
    ids=TABLE_IDS,
)
def test_real_shapes(real_data_dir: Path, loader: Loader, shape: tuple[int, int]) -> None:
    frame = loader(real_data_dir)
    assert frame.shape == shape
    assert all(frame[c].dtype == np.int64 for c in frame.columns
               if c.endswith("ID") or c in {"weight", "day", "month", "year"})


@pytest.mark.realdata
def test_real_artists(real_data_dir: Path) -> None:
    artists = load_artists(real_data_dir)
    assert artists["pictureURL"].isna().sum() == 444
    assert '"Weird Al" Yankovic' in set(artists["name"])
    assert artists["artistID"].is_unique


@pytest.mark.realdata
def test_real_tags_latin1(real_data_dir: Path) -> None:
    assert "tropicália" in set(load_tags(real_data_dir)["tagValue"])


@pytest.mark.realdata
def test_real_verify_and_optional_file(real_data_dir: Path) -> None:
    verify_data(real_data_dir)
    assert load_user_tagged_timestamps(real_data_dir) is None


# --------------------------------------------------------------------------- damaged values


def test_negative_play_count_names_file_and_line(broken_dir: Path) -> None:
    rewrite_line(broken_dir / "user_artists.dat", 23,
                 lambda line: line.rsplit("\t", 1)[0] + "\t-5")
    with pytest.raises(DataError) as excinfo:
        load_user_artists(broken_dir)
    message = one_line(excinfo)
    assert f"{broken_dir / 'user_artists.dat'} line 23: column weight has -5" in message
    assert "negative" in message


@pytest.mark.parametrize("bad", ["nan", "NaN", "-"])
def test_nan_play_count_names_file_and_line(broken_dir: Path, bad: str) -> None:
    rewrite_line(broken_dir / "user_artists.dat", 8,
                 lambda line: line.rsplit("\t", 1)[0] + "\t" + bad)
    with pytest.raises(DataError) as excinfo:
        load_user_artists(broken_dir)
    assert f"user_artists.dat line 8: column weight has {bad!r}" in one_line(excinfo)


@pytest.mark.parametrize(("loader", "file", "key_width"), [
    (load_user_artists, "user_artists.dat", 2),
    (load_user_friends, "user_friends.dat", 2),
    (load_user_tagged, "user_taggedartists.dat", 3),
    (load_artists, "artists.dat", 1),
], ids=["user_artists", "user_friends", "user_tagged", "artists"])
def test_duplicate_rows_name_both_lines(broken_dir: Path, loader: Loader, file: str,
                                        key_width: int) -> None:
    path = broken_dir / file
    lines = path.read_text(encoding="utf-8").split("\n")
    key = lines[4].split("\t")[:key_width]  # line 5
    lines[9] = "\t".join(key + lines[9].split("\t")[key_width:])  # line 10 repeats its key
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as excinfo:
        loader(broken_dir)
    message = one_line(excinfo)
    assert f"{path} line 10 repeats line 5" in message


def test_missing_header_names_the_file(broken_dir: Path) -> None:
    path = broken_dir / "user_friends.dat"
    path.write_text(path.read_text().split("\n", 1)[1])
    with pytest.raises(DataError) as excinfo:
        load_user_friends(broken_dir)
    message = one_line(excinfo)
    assert f"{path}: the header (line 1) lacks column userID, friendID" in message


def test_truncated_file_is_a_short_row(broken_dir: Path) -> None:
    path = broken_dir / "user_taggedartists.dat"
    content = path.read_bytes()
    cut = content.rindex(b"\t", 0, len(content) // 3)  # mid-line, a few fields in
    path.write_bytes(content[:cut])
    lines = content[:cut].count(b"\n") + 1
    with pytest.raises(DataError) as excinfo:
        load_user_tagged(broken_dir)
    message = one_line(excinfo)
    assert f"{path} line {lines} has" in message and "expected 6 tab-separated" in message


# --------------------------------------------------------------------------- the release


def use_as_release(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, str]]:
    """Make the files in ``folder`` the published release for this test."""
    checksums = checksums_of(folder)
    for name, value in checksums.items():
        monkeypatch.setitem(CHECKSUMS, name, value)
    return checksums


def test_release_copy_gives_no_warning(synthetic_dir: Path, no_env: pytest.MonkeyPatch) -> None:
    use_as_release(synthetic_dir, no_env)
    assert data.release_differences(synthetic_dir) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(synthetic_dir)


def test_differing_files_give_one_warning_and_load(broken_dir: Path,
                                                   no_env: pytest.MonkeyPatch) -> None:
    checksums = use_as_release(broken_dir, no_env)
    tagged = broken_dir / "user_taggedartists.dat"
    content = tagged.read_bytes()
    tagged.write_bytes(content[:content.index(b"\n", len(content) // 10) + 1])  # whole lines
    plays = broken_dir / "user_artists.dat"
    played = plays.read_bytes()
    last_digit = b"8" if played[-2:-1] == b"9" else b"9"
    plays.write_bytes(played[:-2] + last_digit + b"\n")  # same size, another play count
    with pytest.warns(DataDifferenceWarning) as record:
        dataset = load_dataset(broken_dir)
    assert len(record) == 1
    message = str(record[0].message)
    assert "\n" not in message
    assert (f"user_taggedartists.dat ({tagged.stat().st_size} bytes, the release has "
            f"{checksums['user_taggedartists.dat'][0]})") in message
    assert "user_artists.dat (other content)" in message
    assert message.count(".dat (") == 2
    assert "figures will differ from the original's" in message
    assert len(dataset.user_tagged) < content.count(b"\n") / 5


def test_real_data_is_the_release(real_data_dir: Path) -> None:
    assert data.release_differences(real_data_dir) == []


def test_cut_inside_the_last_field_is_flagged(broken_dir: Path, no_env: pytest.MonkeyPatch) -> None:
    checksums = use_as_release(broken_dir, no_env)
    tagged = broken_dir / "user_taggedartists.dat"
    content = tagged.read_bytes()
    cut = content.index(b"\n", len(content) // 2) - 2  # the year loses its last two digits
    tagged.write_bytes(content[:cut])
    with pytest.warns(DataDifferenceWarning) as record:
        load_dataset(broken_dir)
    assert (f"user_taggedartists.dat ({cut} bytes, the release has "
            f"{checksums['user_taggedartists.dat'][0]}; no line break at the end: cut off?)"
            ) in str(record[0].message)
