"""JupyterLab of the locked environment (``make lab``, started with the Makefile's
``LAB_OPTIONS``): it serves the project folder, so the rec sheets are within reach of its file
browser, opens on the notebooks, and runs a kernel of the project's environment that imports
``lastfm_rec`` in the notebook's folder. Only 127.0.0.1 is contacted."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

PROJECT = Path(__file__).resolve().parent.parent
NOTEBOOKS = PROJECT / "notebooks"
REC_SHEET = PROJECT / "rec_sheets" / "your_artists.csv"
STARTUP_SECONDS = 120
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Lab:
    """A running JupyterLab server and an authorised client of its REST API."""

    def __init__(self, process: subprocess.Popen, port: int, token: str) -> None:
        self.process, self.port, self.token = process, port, token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None

    def page(self, path: str) -> str:
        """The text of a page the browser would load."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"jupyter lab exited with {self.process.returncode}: "
                            f"{self.process.stderr.read()[-2000:]}")
            try:
                if self.call("GET", "/api/status")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        pytest.fail(f"jupyter lab did not answer on port {self.port} within "
                    f"{STARTUP_SECONDS} s")


def lab_options() -> list[str]:
    """The options ``make lab`` gives JupyterLab (``LAB_OPTIONS`` in the Makefile)."""
    found = re.search(r"^LAB_OPTIONS\s*:?=(.*)$", (PROJECT / "Makefile").read_text(),
                      re.MULTILINE)
    assert found, "the Makefile defines no LAB_OPTIONS"
    return shlex.split(found.group(1))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    port, token = free_port(), secrets.token_hex(16)
    jupyter = tmp_path_factory.mktemp("jupyter")
    # Fresh Jupyter folders: no user configuration or kernels take part.
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
           "JUPYTER_DATA_DIR": str(jupyter / "data"),
           "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime")}
    process = subprocess.Popen(  # from the project folder, as make runs it
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", *lab_options(),
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    server = Lab(process, port, token)
    try:
        server.wait_until_ready()
        yield server
    finally:
        if process.poll() is None:
            try:
                server.call("POST", "/api/shutdown")
                process.wait(timeout=30)
            except (urllib.error.URLError, ConnectionError, subprocess.TimeoutExpired):
                process.kill()
                process.wait(timeout=30)
        process.stderr.close()


def execute(lab: Lab, kernel_id: str, code: str) -> tuple[str, str]:
    """Run ``code`` over the kernel's websocket; returns (status, printed text)."""
    session = uuid.uuid4().hex
    connection = websocket.create_connection(
        f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels?session_id={session}",
        header=[f"Authorization: token {lab.token}"], timeout=STARTUP_SECONDS)
    try:
        msg_id = uuid.uuid4().hex
        connection.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session,
                       "username": "test", "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        # The reply (shell channel) can overtake the printed text (iopub channel): wait for
        # both the reply and the kernel's "idle" status that closes this request's output.
        printed, status, idle = [], None, False
        deadline = time.monotonic() + STARTUP_SECONDS
        while (status is None or not idle) and time.monotonic() < deadline:
            message = json.loads(connection.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["header"]["msg_type"]
            if kind == "stream":
                printed.append(message["content"]["text"])
            elif kind == "error":
                printed.append("\n".join(message["content"]["traceback"]))
            elif kind == "execute_reply":
                status = message["content"]["status"]
            elif kind == "status":
                idle = message["content"]["execution_state"] == "idle"
        return status or "no reply", "".join(printed)
    finally:
        connection.close()


def test_lab_opens_on_the_notebooks_with_the_rec_sheets_within_reach(lab) -> None:
    status, listing = lab.call("GET", "/api/contents/notebooks")
    assert status == 200
    names = {item["name"] for item in listing["content"]}
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} <= names
    assert "04_recommendations.ipynb" in names
    # The file browser starts in notebooks/ (JupyterLab's page config).
    page = lab.page("/lab")
    assert re.search(r'"preferredPath":\s*"/?notebooks/?"', page), page[:2000]

    status, sheet = lab.call("GET", "/api/contents/rec_sheets/your_artists.csv?content=1")
    assert status == 200 and sheet["type"] == "file"
    assert sheet["content"] == REC_SHEET.read_text(encoding="utf-8")


def test_lab_runs_the_projects_kernel_in_the_notebooks_folder(lab) -> None:
    status, session = lab.call("POST", "/api/sessions", {
        "path": "notebooks/04_recommendations.ipynb", "name": "04_recommendations.ipynb",
        "type": "notebook", "kernel": {"name": "python3"}})
    assert status == 201
    kernel_id = session["kernel"]["id"]
    # The notebooks name the sheets relative to their own folder (../rec_sheets/...).
    outcome, printed = execute(lab, kernel_id,
                               "import os, sys, lastfm_rec\nprint(lastfm_rec.__version__)\n"
                               "print(sys.prefix)\nprint(os.getcwd())\n"
                               "print(os.path.isfile('../rec_sheets/your_artists.csv'))")
    assert outcome == "ok", printed
    version, prefix, cwd, sheet_found = printed.split()
    assert version == __import__("lastfm_rec").__version__
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()  # the project's environment
    assert Path(cwd).resolve() == NOTEBOOKS.resolve()
    assert sheet_found == "True"

    assert lab.call("DELETE", f"/api/sessions/{session['id']}")[0] == 204
    assert lab.call("GET", "/api/kernels")[1] == []
