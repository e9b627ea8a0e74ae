"""dcaasd, the admin's command: a clear line and an exit code, never a traceback.

The script is loaded from scripts/dcaasd.py and run through its main();
`status` talks to a real status API on loopback.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
from pathlib import Path

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils import daemon
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "dcaasd.py"


@pytest.fixture(scope="module")
def dcaasd():
    spec = importlib.util.spec_from_file_location("dcaasd_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def config_file(tmp_path):
    """Write an engine config with these fields; gives its path."""

    def write(**fields) -> str:
        data = {
            "cluster": "t",
            "resources": [{"name": "a", "flavor": "f", "image": "i", "cores": 1, "memory_mb": 1}],
            "state_file": str(tmp_path / "state.json"),
            "status_token_file": str(tmp_path / "status.token"),
            **fields,
        }
        path = tmp_path / "engine.json"
        path.write_text(json.dumps(data))
        return str(path)

    return write


@pytest.fixture
def daemon_api(tmp_path):
    """A running status API with the daemon's token file; gives its listen address."""
    status = daemon.Status(30)
    status.update(cycles=7, last_pass=1e9, error="CommandError: sinfo failed", consecutive_failures=2)
    server = daemon.serve_status(status, "127.0.0.1:0", daemon.status_token(str(tmp_path / "status.token")))
    host, port = server.server_address[:2]
    yield f"{host}:{port}"
    server.shutdown()
    server.server_close()


def run(dcaasd, capsys, *argv) -> tuple[int, str, str]:
    code = dcaasd.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_status_sends_the_token_and_shows_the_last_pass(dcaasd, config_file, daemon_api, capsys):
    cfg = config_file(status_listen=daemon_api)
    code, out, _err = run(dcaasd, capsys, "--config", cfg, "status", "--json")
    assert code == 0 and json.loads(out)["cycles"] == 7
    code, out, _err = run(dcaasd, capsys, "--config", cfg, "status")
    assert code == 0 and "last pass failed (2 in a row): CommandError: sinfo failed" in out


def test_status_with_a_token_the_daemon_does_not_know_says_so(dcaasd, config_file, daemon_api, tmp_path, capsys):
    other = tmp_path / "other.token"
    daemon.status_token(str(other))
    cfg = config_file(status_listen=daemon_api, status_token_file=str(other))
    code, _out, err = run(dcaasd, capsys, "--config", cfg, "status")
    assert code == 1 and "refused the token" in err


def test_status_without_a_token_says_the_api_wants_one(dcaasd, config_file, daemon_api, capsys):
    code, _out, err = run(
        dcaasd, capsys, "--config", config_file(status_listen=daemon_api, status_auth="none"), "status"
    )
    assert code == 1 and "wants a token" in err


def test_status_that_cannot_read_the_token_says_run_as_root(
    dcaasd, config_file, daemon_api, tmp_path, monkeypatch, capsys
):
    token_file = str(tmp_path / "status.token")
    real_open = os.open

    def as_a_user(path, *args, **kwargs):
        if path == token_file:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", as_a_user)  # tests run as root, whom modes do not stop
    code, _out, err = run(dcaasd, capsys, "--config", config_file(status_listen=daemon_api), "status")
    assert code == 1 and "Permission denied" in err and "run as root" in err


def test_status_before_the_daemon_made_its_token_says_to_start_it(dcaasd, config_file, capsys):
    code, _out, err = run(dcaasd, capsys, "--config", config_file(status_listen="127.0.0.1:9"), "status")
    assert code == 1 and "does not exist" in err and "systemctl status dcaas-engine" in err


def test_status_of_a_daemon_that_is_not_running(dcaasd, config_file, tmp_path, capsys):
    daemon.status_token(str(tmp_path / "status.token"))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        listen = f"127.0.0.1:{closed.getsockname()[1]}"
    code, _out, err = run(dcaasd, capsys, "--config", config_file(status_listen=listen), "status")
    assert code == 1 and f"status API at {listen} does not answer" in err


def test_controls_on_a_state_file_that_cannot_be_written_say_why(dcaasd, config_file, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    cfg = config_file(state_file=str(tmp_path / "file" / "state.json"))
    for argv in (["freeze"], ["auto", "off"], ["hold", "t-a-1"], ["drain", "a"]):
        code, _out, err = run(dcaasd, capsys, "--config", cfg, *argv)
        assert code == 1 and err.startswith(f"dcaasd {argv[0]} failed: ") and err.count("\n") == 1
        assert "Error: [Errno" in err and str(tmp_path / "file") in err


def test_controls_without_permission_say_run_as_root(dcaasd, config_file, monkeypatch, capsys):
    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied", "/var/lib/dcaas/state.json.lock")

    monkeypatch.setattr(dcaasd, "change_controls", denied)
    code, _out, err = run(dcaasd, capsys, "--config", config_file(), "thaw")
    assert code == 1 and "Permission denied" in err and err.rstrip().endswith("; run as root")


class BrokenEngine:
    def __init__(self, exc):
        self.exc = exc

    def run_once(self, check_mode=False):
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [RecursionError("maximum recursion depth exceeded"), KeyError("nodes"), TypeError("x" * 10_000), ValueError("v")],
)
def test_once_reports_a_failed_pass_in_one_line(dcaasd, config_file, monkeypatch, capsys, exc):
    monkeypatch.setattr(dcaasd, "build_engine", lambda *_a, **_k: BrokenEngine(exc))
    code, _out, err = run(dcaasd, capsys, "--config", config_file(), "once")
    assert code == 1 and err.startswith(f"dcaasd once failed: {type(exc).__name__}") and len(err) < 500


@pytest.fixture
def starting(monkeypatch):
    """`dcaasd run` up to its first pass: an engine that must not be reached, pytest's signal handlers kept."""
    monkeypatch.setattr(signal, "signal", lambda *_args: None)
    monkeypatch.setattr(daemon, "build_engine", lambda *_a, **_k: BrokenEngine(AssertionError("no pass")))


def test_run_on_a_port_in_use_exits_2_naming_status_listen(dcaasd, config_file, capsys, starting):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        code, _out, err = run(dcaasd, capsys, "--config", config_file(status_listen=listen), "run")
    assert code == 2 and f"status_listen '{listen}': cannot listen there" in err


def test_run_with_a_token_file_others_can_read_exits_2(dcaasd, config_file, tmp_path, capsys, starting):
    token = tmp_path / "status.token"
    token.write_text("a" * 64)
    token.chmod(0o644)
    code, _out, err = run(dcaasd, capsys, "--config", config_file(status_listen="127.0.0.1:8655"), "run")
    assert code == 2 and "mode 0644" in err and "a" * 64 not in err


def refusing(*_args, **_kwargs):
    raise CloudError("config", "cloud.options.sockt: unknown field; known fields here are: socket, timeout")


def test_once_with_options_the_cloud_refuses_exits_2_naming_the_field(dcaasd, config_file, monkeypatch, capsys):
    monkeypatch.setattr(dcaasd, "build_engine", refusing)
    code, _out, err = run(dcaasd, capsys, "--config", config_file(), "once")
    assert code == 2 and err.startswith("cloud.options.sockt: unknown field; known fields here are")


def test_run_with_provider_options_the_cloud_refuses_exits_2(dcaasd, config_file, monkeypatch, capsys, starting):
    monkeypatch.setattr(daemon, "build_engine", refusing)
    code, _out, err = run(dcaasd, capsys, "--config", config_file(), "run")
    assert code == 2 and err.startswith("cloud.options.sockt: unknown field")


def test_a_failed_pass_never_shows_a_credential_of_the_config(dcaasd, config_file, monkeypatch, capsys):
    secret = "dcaasmarker9f8e7d6c"
    exc = CloudError("transient", f"cannot reach https://u:{secret}@keystone.example/v3")
    monkeypatch.setattr(dcaasd, "build_engine", lambda *_a, **_k: BrokenEngine(exc))
    cloud = {"provider": "openstack", "options": {"auth": {"username": "u", "password": secret}}}
    code, _out, err = run(dcaasd, capsys, "--config", config_file(cloud=cloud), "once")
    assert code == 1 and err.startswith("dcaasd once failed: CloudError: cannot reach https://u:********@keystone")
    assert secret not in err
