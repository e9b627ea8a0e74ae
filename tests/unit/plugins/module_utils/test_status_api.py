"""The status API: GET /status only with the token; the token file; where it may listen.

Real HTTP on loopback, an ephemeral port per server.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import types
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils import daemon
from ansible_collections.dcaas.cluster.plugins.module_utils.config import listen_address, parse

TOKEN = "4f" * 32


@pytest.fixture
def api():
    """A status API with token TOKEN and one pass behind it; gives its base URL."""
    status = daemon.Status(30)
    status.update(cycles=1, last_pass=9e9, result={"pending_jobs": 3}, error=None)
    server = daemon.serve_status(status, "127.0.0.1:0", TOKEN)
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()


def get(url: str, authorization: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer \u00e9t\u00e9", TOKEN],
)
def test_status_without_the_token_is_401_and_no_data(api, authorization):
    code, body = get(f"{api}/status", authorization)
    assert code == 401
    assert set(body) == {"error"} and "Bearer" in body["error"] and TOKEN not in body["error"]


def test_status_with_the_token_is_200(api):
    assert get(f"{api}/status", f"Bearer {TOKEN}") == (
        200,
        {"cycles": 1, "last_pass": 9e9, "result": {"pending_jobs": 3}, "error": None, "consecutive_failures": 0},
    )
    assert get(f"{api}/status", f"bearer  {TOKEN} ")[0] == 200  # the scheme is case-insensitive


def test_healthz_stays_open_and_says_only_whether_passes_succeed(api):
    assert get(f"{api}/healthz") == (200, {"healthy": True})


def test_a_failing_snapshot_is_a_500_not_a_dropped_connection(api, monkeypatch):
    monkeypatch.setattr(daemon.Status, "snapshot", lambda _self: {}["boom"])
    assert get(f"{api}/status", f"Bearer {TOKEN}")[0] == 500


def test_the_token_file_is_made_0600_in_a_0700_directory_and_read_back(tmp_path):
    path = tmp_path / "new" / "status.token"
    token = daemon.status_token(str(path))
    assert len(token) == 64 and int(token, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert daemon.status_token(str(path)) == token  # a restart keeps it
    assert daemon.status_token(str(tmp_path / "other")) != token


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660])
def test_a_token_file_others_could_read_or_change_is_refused(tmp_path, mode):
    path = tmp_path / "status.token"
    path.write_text(TOKEN)
    path.chmod(mode)
    with pytest.raises(daemon.DaemonError, match=rf"status_token_file .*mode {mode:04o}.*chmod 600") as caught:
        daemon.status_token(str(path))
    assert TOKEN not in str(caught.value)


def test_a_token_file_of_another_user_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "status.token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    monkeypatch.setattr(os, "geteuid", lambda: path.stat().st_uid + 1)
    with pytest.raises(daemon.DaemonError, match=r"belongs to uid \d+, not to this user"):
        daemon.status_token(str(path))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_text(""), "holds no token"),
        (lambda p: p.write_text("short"), "holds no token"),
        (lambda p: p.write_text("a b" * 40), "holds no token"),
        (lambda p: p.write_bytes(b"\xff" * 64), "holds no token"),
        (lambda p: p.mkdir(mode=0o700), "not a regular file"),
        (lambda p: os.mkfifo(p, 0o600), "not a regular file"),  # and no hang at open
        (lambda p: p.symlink_to(p.with_name("elsewhere")), "symbolic link"),
    ],
)
def test_a_token_file_that_holds_no_token_is_refused_with_the_fix(tmp_path, make, reason):
    path = tmp_path / "status.token"
    make(path)
    if path.is_file():
        path.chmod(0o600)
    with pytest.raises(daemon.DaemonError, match=reason):
        daemon.status_token(str(path))


@pytest.mark.parametrize("listen", ["0.0.0.0:8655", "10.1.2.3:8655", "[::]:8655", "head.example.org:8655"])
def test_without_auth_only_a_loopback_address_is_served(listen):
    with pytest.raises(daemon.DaemonError, match=r"status_auth: none .* loopback .*status_auth: token"):
        daemon.serve_status(daemon.Status(30), listen, None)


# Port 0 (any free port) is for tests: the config loader refuses it (test_config).
@pytest.mark.parametrize("listen", ["127.0.0.1:0", "localhost:0", "[::1]:0"])
def test_without_auth_loopback_is_served_to_anyone(listen):
    if listen.startswith("[") and not socket.has_ipv6:
        pytest.skip("no IPv6")
    status = daemon.Status(30)
    status.update(cycles=4)
    server = daemon.serve_status(status, listen, None)
    try:
        host, port = server.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        assert get(f"http://{host}:{port}/status")[1]["cycles"] == 4
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "listen",
    [
        "8655",
        "127.0.0.1:http",
        "127.0.0.1:65536",
        "127.0.0.1:" + "9" * 5000,
        "::1:x",
        # The daemon had a parser of its own that took these, the loader did not:
        ":0",  # an empty host (the daemon read loopback, other servers read every interface)
        "[localhost]:0",  # brackets around a name
        "[127.0.0.1]:0",
        "under_score:0",
    ],
)
def test_the_daemon_refuses_what_the_loader_refuses_with_its_words(listen):
    with pytest.raises(ValueError) as loader:
        listen_address(listen)
    with pytest.raises(daemon.DaemonError) as refused:
        daemon.serve_status(daemon.Status(30), listen, TOKEN)
    message = str(refused.value)
    assert message.startswith("status_listen ") and message.endswith(str(loader.value))
    assert len(message) < 500


def test_a_port_in_use_is_a_clear_error_naming_status_listen():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(daemon.DaemonError, match=rf"status_listen '{listen}': cannot listen there"):
            daemon.serve_status(daemon.Status(30), listen, TOKEN)


def config(tmp_path, **fields):
    """A valid config with ``fields`` set afterwards, as the loader would not
    allow them (port 0, auth none off loopback): the daemon checks again."""
    cfg = parse(
        {
            "cluster": "t",
            "resources": [{"name": "a", "flavor": "f", "image": "i", "cores": 1, "memory_mb": 1}],
            "state_file": str(tmp_path / "state.json"),
            "status_token_file": str(tmp_path / "status.token"),
        }
    )
    return replace(cfg, **{"status_listen": "127.0.0.1:0", **fields})


class FailingEngine:
    wlm = types.SimpleNamespace(pending_ids=lambda: None, supports=lambda capability: False)

    def run_once(self):
        raise ValueError("no WLM here")


def test_the_daemon_refuses_auth_none_on_a_public_address_even_if_the_config_let_it(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon, "build_engine", lambda *_a, **_k: FailingEngine())
    cfg = config(tmp_path, status_auth="none", status_listen="0.0.0.0:8655")
    with pytest.raises(daemon.DaemonError, match="loopback"):
        daemon.run_loop(cfg, threading.Event(), max_passes=1)


def test_the_daemon_makes_its_token_and_never_logs_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(daemon, "build_engine", lambda *_a, **_k: FailingEngine())
    assert daemon.run_loop(config(tmp_path), threading.Event(), max_passes=1) == 0
    token = (tmp_path / "status.token").read_text().strip()
    out = capsys.readouterr().out
    assert '"status_auth": "token"' in out and '"pass_failed"' in out and token not in out
