"""The modules report every error through the one translator (frontend.explain):
bad input as its own message naming the field, a failing cloud, WLM or host as
"cannot observe the cluster: Class: message", never a traceback or a credential."""

from __future__ import annotations

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError
from ansible_collections.dcaas.cluster.plugins.modules import cluster_info, instance, scale
from ansible_collections.dcaas.cluster.tests.unit.plugins.modules.test_no_secret_leak import (
    engine_config,
    new_marker,
    run_module,
)

REFUSED = "cloud.options.sockt: unknown field; known fields here are: socket, timeout"


class FailingEngine:
    def __init__(self, cfg, exc):
        from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore

        self.store = StateStore(cfg.state_file)
        self.exc = exc

    def run_once(self, check_mode, controls=None):
        raise self.exc


@pytest.mark.parametrize("module", [scale, cluster_info], ids=["scale", "cluster_info"])
def test_options_the_cloud_refuses_are_named_as_they_are(module, monkeypatch, capsys, tmp_path):
    def refusing(cfg):
        raise CloudError("config", REFUSED)

    monkeypatch.setattr(module, "build_engine", refusing)
    args = {"config": engine_config(new_marker()), "state_file": str(tmp_path / "state.json")}
    result, _logged = run_module(module, args, monkeypatch, capsys)
    assert result["failed"] and result["msg"] == REFUSED


@pytest.mark.parametrize("module", [scale, cluster_info], ids=["scale", "cluster_info"])
@pytest.mark.parametrize(
    ("exc", "start"),
    [
        (CloudError("transient", "cannot reach https://demo:{marker}@keystone"), "CloudError: cannot reach"),
        (PermissionError(13, "Permission denied", "/var/lib/dcaas/state.json.lock"), "PermissionError: [Errno 13]"),
        (KeyError("nodes"), "KeyError: 'nodes'"),
    ],
    ids=["cloud", "state", "bug"],
)
def test_a_failing_pass_says_what_failed(module, exc, start, monkeypatch, capsys, tmp_path):
    marker = new_marker()
    if isinstance(exc, CloudError):
        exc = CloudError(exc.kind, str(exc).format(marker=marker))
    monkeypatch.setattr(module, "build_engine", lambda cfg: FailingEngine(cfg, exc))
    args = {"config": engine_config(marker), "state_file": str(tmp_path / "state.json")}
    result, _logged = run_module(module, args, monkeypatch, capsys)
    assert result["failed"] and result["msg"].startswith(f"cannot observe the cluster: {start}"), result["msg"]
    assert marker not in result["msg"]


def test_instance_names_the_option_the_cloud_refuses(monkeypatch, capsys):
    def refusing(*_args, **_kwargs):
        raise CloudError("config", REFUSED)

    monkeypatch.setattr(instance, "make_provider_for", refusing)
    args = {"cluster": "demo", "name": "demo-head", "image": "img"}
    result, _logged = run_module(instance, args, monkeypatch, capsys)
    assert result["failed"] and result["msg"] == REFUSED


def test_instance_says_which_instance_a_failing_cloud_was_asked_about(monkeypatch, capsys):
    def unreachable(*_args, **_kwargs):
        raise CloudError("transient", "podman API at unix:///x did not answer")

    monkeypatch.setattr(instance, "make_provider_for", unreachable)
    args = {"cluster": "demo", "name": "demo-head", "image": "img"}
    result, _logged = run_module(instance, args, monkeypatch, capsys)
    assert result["msg"] == "instance 'demo-head': CloudError: podman API at unix:///x did not answer"
