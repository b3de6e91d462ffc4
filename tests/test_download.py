"""fetch_data against a real HTTP server on 127.0.0.1: success, and failures that leave no trace."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lastfm_rec.data import hetrec as data
from lastfm_rec.data.hetrec import (
    REQUIRED_FILES,
    DataError,
    fetch_data,
    load_user_artists,
    verify_data,
)

README = b"synthetic HetRec copy for tests\n"


@dataclass
class Route:
    body: bytes
    status: int = 200
    declared_length: int | None = None  # a Content-Length larger than the body cuts it off


@dataclass
class Server:
    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def serve(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.base + path


class Handler(BaseHTTPRequestHandler):
    server_state: Server  # set on the subclass the fixture makes

    def do_GET(self) -> None:
        self.server_state.requests.append(self.path)
        route = self.server_state.routes.get(self.path, Route(b"no such file", 404))
        self.send_response(route.status)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(route.declared_length or len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)
        self.wfile.flush()
        self.close_connection = True  # with a short body, the client sees the socket close

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def http_server() -> Iterator[Server]:
    state = Server(base="")
    handler = type("BoundHandler", (Handler,), {"server_state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def server(http_server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    # A proxy in the environment would intercept requests to 127.0.0.1.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    http_server.routes.clear()
    http_server.requests.clear()
    return http_server


def release_files(synthetic_dir: Path) -> dict[str, bytes]:
    files = {name: (synthetic_dir / name).read_bytes() for name in REQUIRED_FILES}
    return {**files, "readme.txt": README}


def checksums_of(files: dict[str, bytes]) -> dict[str, tuple[int, str]]:
    return {name: (len(body), hashlib.sha256(body).hexdigest())
            for name, body in files.items() if name in REQUIRED_FILES}


def make_zip(files: dict[str, bytes], prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if prefix:
            archive.writestr(prefix, b"")  # the folder entry, as zip tools write it
        for name, body in files.items():
            archive.writestr(prefix + name, body)
    return buffer.getvalue()


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden ones too) with its bytes, None for folders."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


def one_line(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message and "\r" not in message
    return message


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("prefix", ["", "hetrec2011-lastfm-2k/"], ids=["top-level", "folder"])
def test_download_good_zip(server: Server, synthetic_dir: Path, tmp_path: Path,
                           prefix: str) -> None:
    files = release_files(synthetic_dir)
    junk = {"__MACOSX/._artists.dat": b"junk", "other/user_artists.dat": b"junk"}
    url = server.serve("/good.zip", Route(make_zip({**files, **junk}, prefix)))
    target = tmp_path / "data" / "hetrec2011-lastfm-2k"
    target.parent.mkdir()

    result = fetch_data(target, url=url, checksums=checksums_of(files), show_progress=False)

    assert result == target
    assert sorted(p.name for p in target.iterdir()) == sorted(files)
    assert all((target / name).read_bytes() == body for name, body in files.items())
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp files left
    verify_data(target, checksums_of(files))
    assert len(load_user_artists(target)) == len(load_user_artists(synthetic_dir))
    assert server.requests == ["/good.zip"]

    assert fetch_data(target, url=url, checksums=checksums_of(files)) == target
    assert server.requests == ["/good.zip"]  # found on disk: not downloaded again


def test_download_with_progress_bar(server: Server, synthetic_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    files = release_files(synthetic_dir)
    url = server.serve("/good.zip", Route(make_zip(files)))
    fetch_data(tmp_path / "d", url=url, checksums=checksums_of(files), show_progress=True)
    assert "hetrec2011-lastfm-2k" in capsys.readouterr().err


def test_download_into_default_folder_creates_parents(server: Server, synthetic_dir: Path,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    files = release_files(synthetic_dir)
    target = tmp_path / "project" / "data" / "hetrec2011-lastfm-2k"
    monkeypatch.setattr(data, "default_data_dir", lambda: target)
    url = server.serve("/good.zip", Route(make_zip(files)))
    assert fetch_data(url=url, checksums=checksums_of(files), show_progress=False) == target
    assert (target / "user_friends.dat").read_bytes() == files["user_friends.dat"]


def test_download_into_env_folder(server: Server, synthetic_dir: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    files = release_files(synthetic_dir)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    monkeypatch.setattr(data, "default_data_dir", lambda: tmp_path / "default")
    url = server.serve("/good.zip", Route(make_zip(files)))
    fetched = fetch_data(url=url, checksums=checksums_of(files), show_progress=False)
    assert fetched == tmp_path / "env"
    assert not (tmp_path / "default").exists()


def test_download_completes_a_partial_folder(server: Server, synthetic_dir: Path,
                                             tmp_path: Path) -> None:
    files = release_files(synthetic_dir)
    target = tmp_path / "hetrec"
    target.mkdir()
    (target / "artists.dat").write_bytes(b"half a file")
    (target / "NOTES.md").write_text("mine")
    url = server.serve("/good.zip", Route(make_zip(files)))
    fetch_data(target, url=url, checksums=checksums_of(files), show_progress=False)
    assert (target / "artists.dat").read_bytes() == files["artists.dat"]
    assert (target / "NOTES.md").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hetrec"]


# --------------------------------------------------------------------------- failures


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/refused.zip"  # nothing listens there any more


def failure_case(name: str, files: dict[str, bytes]) -> tuple[Route | None, list[str]]:
    """The served response for a failure, and phrases its message must contain."""
    good = make_zip(files)
    if name == "corrupt":
        return Route(b"PK\x03\x04" + bytes(range(256)) * 8), ["not a valid zip"]
    if name == "truncated-zip":
        return Route(good[: len(good) // 2]), ["not a valid zip"]
    if name == "damaged-member":  # intact directory, garbled compressed bytes
        start = good.index(b"user_artists.dat") + 200
        garbled = good[:start] + bytes(b ^ 0x5A for b in good[start:start + 64])
        return Route(garbled + good[start + 64:]), ["not a valid zip"]
    if name == "mismatch":
        changed = {**files, "user_friends.dat": files["user_friends.dat"] + b"2\t3\n"}
        return Route(make_zip(changed)), [
            "user_friends.dat", f"has {len(changed['user_friends.dat'])} bytes",
            f"expected {len(files['user_friends.dat'])}", "lastfm-rec data"]
    if name == "same-size-mismatch":
        body = files["tags.dat"]
        changed = {**files, "tags.dat": body[:-2] + b"Z\n"}
        actual = hashlib.sha256(changed["tags.dat"]).hexdigest()
        expected = hashlib.sha256(body).hexdigest()
        return Route(make_zip(changed)), ["tags.dat", actual, expected]
    if name == "dotdot-member":
        return Route(make_zip({**files, "../evil.dat": b"x"})), ["'../evil.dat'", "unsafe"]
    if name == "nested-dotdot-member":
        evil = {**files, "hetrec2011-lastfm-2k/../../evil.dat": b"x"}
        return Route(make_zip(evil)), ["'hetrec2011-lastfm-2k/../../evil.dat'"]
    if name == "absolute-member":
        return Route(make_zip({**files, "/tmp/evil.dat": b"x"})), ["'/tmp/evil.dat'"]
    if name == "missing-file":
        fewer = {k: v for k, v in files.items() if k != "user_taggedartists.dat"}
        return Route(make_zip(fewer)), ["user_taggedartists.dat missing"]
    if name == "not-the-release":
        return Route(make_zip({"hello.txt": b"hi"})), ["holds none of"]
    if name == "dropped-connection":
        return Route(good[: len(good) // 2], declared_length=len(good)), [
            "cut off", f"after {len(good) // 2} of {len(good)} bytes"]
    if name == "http-404":
        return Route(b"not here", status=404), ["HTTP 404"]
    if name == "refused":
        return None, ["failed"]
    raise AssertionError(name)


FAILURES = ["corrupt", "truncated-zip", "damaged-member", "mismatch", "same-size-mismatch",
            "dotdot-member", "nested-dotdot-member", "absolute-member", "missing-file",
            "not-the-release", "dropped-connection", "http-404", "refused"]


@pytest.mark.parametrize("state", ["absent", "partial"])
@pytest.mark.parametrize("case", FAILURES)
def test_failed_download_leaves_no_trace(server: Server, synthetic_dir: Path, tmp_path: Path,
                                         case: str, state: str) -> None:
    files = release_files(synthetic_dir)
    parent = tmp_path / "data"
    parent.mkdir()
    (parent / "unrelated.txt").write_text("keep me")
    target = parent / "hetrec2011-lastfm-2k"
    if state == "partial":
        target.mkdir()
        (target / "artists.dat").write_bytes(files["artists.dat"])
        (target / "tags.dat").write_bytes(b"half")
    route, phrases = failure_case(case, files)
    url = server.serve(f"/{case}.zip", route) if route else _closed_port_url()
    before = tree(tmp_path)

    with pytest.raises(DataError) as excinfo:
        fetch_data(target, url=url, checksums=checksums_of(files), show_progress=False)

    message = one_line(excinfo)
    for phrase in phrases:
        assert phrase in message
    assert tree(tmp_path) == before
    assert not (tmp_path / "evil.dat").exists()


def test_failure_removes_folders_it_created(server: Server, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "project" / "data" / "hetrec2011-lastfm-2k"
    monkeypatch.setattr(data, "default_data_dir", lambda: target)
    with pytest.raises(DataError, match="HTTP 404") as excinfo:
        fetch_data(url=server.serve("/gone.zip", Route(b"", status=404)), show_progress=False)
    one_line(excinfo)
    assert list(tmp_path.iterdir()) == []


def test_target_that_is_a_file(server: Server, tmp_path: Path) -> None:
    (tmp_path / "hetrec").write_text("not a folder")
    with pytest.raises(DataError, match="is a file") as excinfo:
        fetch_data(tmp_path / "hetrec", url=server.base + "/x.zip", show_progress=False)
    one_line(excinfo)
    assert server.requests == []
