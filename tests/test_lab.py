"""JupyterLab of the locked environment (``make lab``): it lists the notebooks and runs a kernel
of the project's environment that imports ``lastfm_rec``. Only 127.0.0.1 is contacted."""

from __future__ import annotations

import json
import os
import secrets
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

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
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


@pytest.fixture()
def lab(tmp_path) -> Iterator[Lab]:
    port, token = free_port(), secrets.token_hex(16)
    # Fresh Jupyter folders: no user configuration or kernels take part.
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={NOTEBOOKS}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
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


def test_lab_lists_the_notebooks_and_runs_the_projects_kernel(lab) -> None:
    status, listing = lab.call("GET", "/api/contents/")
    assert status == 200
    names = {item["name"] for item in listing["content"]}
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} <= names
    assert "04_recommendations.ipynb" in names

    status, kernel = lab.call("POST", "/api/kernels", {"name": "python3"})
    assert status == 201
    outcome, printed = execute(lab, kernel["id"],
                               "import sys, lastfm_rec\nprint(lastfm_rec.__version__)\n"
                               "print(sys.prefix)")
    assert outcome == "ok", printed
    version, prefix = printed.split()
    assert version == __import__("lastfm_rec").__version__
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()  # the project's environment

    assert lab.call("DELETE", f"/api/kernels/{kernel['id']}")[0] == 204
    assert lab.call("GET", "/api/kernels")[1] == []
