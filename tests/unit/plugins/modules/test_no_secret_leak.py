"""Credentials given to the modules never show: not in their result, not in
what they log on the managed host, not in ``ansible-playbook -vvv`` or
``--diff`` output.

What is real and what is not:
- the playbook tests run the real ``ansible-playbook -vvv`` on localhost
  (connection local) with the collection's modules, roles and task files,
  and grep everything it prints for a random marker password;
- the managed host's log: this machine has no syslog daemon and no journald
  (no /dev/log), so AnsibleModule's ``syslog.syslog`` call is captured into
  a file instead. In the playbook tests a ``sitecustomize`` on the modules'
  PYTHONPATH wraps ``syslog.syslog`` (then calls the real one); the module
  process, its argument handling and its log message are the real ones, only
  the sink is a file. The in-process tests patch ``syslog.syslog`` the same way;
- the in-process tests replace the engine (or the cloud) with a fake that
  answers with names and numbers that also occur in the configuration, to
  show the results stay readable; the argument handling is AnsibleModule's.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import syslog
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.local import DEFAULT_SOCKET
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Instance, InstanceStatus
from ansible_collections.dcaas.cluster.plugins.modules import cluster_info, instance, scale
from ansible_collections.dcaas.cluster.tests.unit.roles.ansible_cli import REPO, run_ansible

HIDDEN = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

# Options that can carry credentials, per module.
NO_LOG_OPTIONS = {
    scale: ["config"],
    cluster_info: ["config"],
    instance: ["provider_options", "user_data", "options"],
}


def new_marker() -> str:
    return f"dcaasmarker{secrets.token_hex(8)}"


# --- argument specs -------------------------------------------------------------


class _SpecSeen(Exception):
    pass


@pytest.mark.parametrize("module", list(NO_LOG_OPTIONS), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_options_that_can_carry_credentials_are_no_log(module, monkeypatch):
    seen = {}

    def record(**kwargs):
        seen.update(kwargs["argument_spec"])
        raise _SpecSeen

    monkeypatch.setattr(module, "AnsibleModule", record)
    with pytest.raises(_SpecSeen):
        module.main()
    assert {name: seen[name].get("no_log") for name in NO_LOG_OPTIONS[module]} == dict.fromkeys(
        NO_LOG_OPTIONS[module], True
    )


# --- in process: results stay useful, the secret is masked ---------------------


def run_module(module, args: dict, monkeypatch, capsys) -> tuple[dict, list[str]]:
    """Run a module's main() in this process: its JSON result and what it sent to syslog."""
    logged: list[str] = []
    # As in a module's own process, even when controller code was imported
    # here (it would send warnings to the display instead of the result).
    monkeypatch.setattr(module_utils_internal, "is_controller", False)
    monkeypatch.setattr(basic, "has_journal", False)
    monkeypatch.setattr(syslog, "syslog", lambda *a: logged.append(a[-1]))
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out), logged


def engine_config(marker: str) -> dict:
    # Names and numbers the results also hold: Ansible would mask every one of
    # them if it treated the whole (no_log) config as a secret.
    return {
        "cluster": "demo",
        "cloud": {
            "provider": "openstack",
            "options": {"auth": {"username": "demo", "password": marker, "project_name": "small"}},
        },
        "resources": [{"name": "small", "flavor": "m1", "image": "img", "cores": 2, "memory_mb": 2048, "max": 4}],
    }


class FakeEngine:
    """Answers like Engine.run_once, with an error that quotes the secret."""

    def __init__(self, cfg, marker: str):
        from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore

        self.store = StateStore(cfg.state_file)
        self.marker = marker

    def run_once(self, check_mode: bool, controls=None):
        out = {
            "plan": {
                "launch": [{"resource": "small", "count": 2, "reason": "2 pending job(s)", "jobs": ["2", "4"]}],
                "actions": [],
                "unfit_jobs": [],
                "notes": [],
            },
            "launched": [],
            "done": [],
            "errors": [f"launch small: the cloud refused password {self.marker}"],
            "warnings": [],
            "nodes": [{"name": "demo-small-2a4b", "resource": "small", "state": "busy", "cores": 2, "memory_mb": 2048}],
            "node_counts": {"small": {"busy": 2}},
            "pending_jobs": 2,
            "running_jobs": 4,
        }
        return SimpleNamespace(
            changed=False,
            warnings=[f"resource small: headroom unknown: the cloud refused password {self.marker}"],
            errors=out["errors"],
            observed=SimpleNamespace(jobs=[]),
            to_dict=lambda: out,
        )


@pytest.mark.parametrize("module", [scale, cluster_info], ids=["scale", "cluster_info"])
def test_engine_module_result_is_readable_and_never_shows_the_password(module, monkeypatch, capsys, tmp_path):
    marker = new_marker()
    monkeypatch.setattr(module, "build_engine", lambda cfg: FakeEngine(cfg, marker))
    args = {"config": engine_config(marker), "state_file": str(tmp_path / "state.json")}
    result, logged = run_module(module, args, monkeypatch, capsys)

    assert (marker in json.dumps(result), marker in "\n".join(logged)) == (False, False)
    assert result["nodes"][0]["name"] == "demo-small-2a4b" and result["nodes"][0]["cores"] == 2
    assert result["node_counts"] == {"small": {"busy": 2}}
    assert (result["pending_jobs"], result["running_jobs"]) == (2, 4)
    assert result["plan"]["launch"][0]["jobs"] == ["2", "4"]
    assert result["invocation"]["module_args"]["config"] == HIDDEN
    assert any("config=NOT_LOGGING_PARAMETER" in line for line in logged), logged
    # Warnings and errors still say what failed, without the secret (ansible-core
    # 2.19 does not mask warnings itself).
    assert "headroom unknown: the cloud refused password ********" in json.dumps(result["warnings"])
    if module is scale:
        assert result["errors"] == ["launch small: the cloud refused password ********"]


def test_instance_result_is_readable_and_never_shows_the_options(monkeypatch, capsys):
    marker = new_marker()

    class FakeCloud:
        def list_instances(self):
            return [
                Instance(
                    "id-demo", "demo-head", "demo-head", InstanceStatus.ACTIVE, 0.0, role="head", address="10.0.0.2"
                )
            ]

    monkeypatch.setattr(instance, "make_provider_for", lambda *a: FakeCloud())
    args = {
        "cluster": "demo",
        "name": "demo-head",
        "image": "img",
        "provider": "openstack",
        "provider_options": {"network": "demo", "auth": {"password": marker}},
        "options": {"auth": {"application_credential_secret": marker}},
        "user_data": f"#cloud-config\nchpasswd: {{users: [{{name: root, password: {marker}}}]}}\n",
    }
    result, logged = run_module(instance, args, monkeypatch, capsys)

    assert (marker in json.dumps(result), marker in "\n".join(logged)) == (False, False)
    assert result["instance"]["name"] == "demo-head" and result["instance"]["address"] == "10.0.0.2"
    assert {result["invocation"]["module_args"][k] for k in NO_LOG_OPTIONS[instance]} == {HIDDEN}
    assert any("provider_options=NOT_LOGGING_PARAMETER" in line for line in logged), logged


# --- ansible-playbook -vvv / --diff --------------------------------------------

SITECUSTOMIZE = """\
# Test only: copy what AnsibleModule sends to syslog into a file (no syslog here).
import os
import syslog

_sink = os.environ.get("DCAAS_TEST_SYSLOG")
if _sink:
    _real = syslog.syslog

    def _capture(*args):
        with open(_sink, "a", encoding="utf-8") as fh:
            fh.write(str(args[-1]) + "\\n")
        _real(*args)

    syslog.syslog = _capture
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def playbook(tmp_path, *args: str, plays: list[dict]) -> tuple[str, str]:
    """Run plays on localhost at -vvv: everything printed, and the modules' syslog."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    sink = tmp_path / "syslog.txt"
    for play in plays:
        play["environment"] = {"PYTHONPATH": str(site), "DCAAS_TEST_SYSLOG": str(sink)}
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    (tmp_path / "hosts").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    proc = run_ansible("ansible-playbook", "-vvv", "-i", str(tmp_path / "hosts"), *args, str(tmp_path / "play.yml"))
    return proc.stdout + proc.stderr, sink.read_text() if sink.exists() else ""


def task(module: str, args: dict, what: str, **keywords: Any) -> dict:
    return {"name": f"{module} {what}", module: args, "ignore_errors": True, **keywords}


@pytest.mark.slow
def test_modules_at_vvv_never_show_the_password(tmp_path):
    marker = new_marker()
    absent_socket = f"unix://{tmp_path}/no-podman.sock"
    user_data = f"#cloud-config\nchpasswd: {{users: [{{name: root, password: {marker}}}]}}\n"
    openstack = {
        "cluster": "demo",
        "cloud": {
            "provider": "openstack",
            "options": {
                "auth": {
                    "auth_url": f"http://127.0.0.1:{closed_port()}/v3",
                    "username": "admin",
                    "password": marker,
                    "project_name": "demo",
                },
                "timeout": 5,
            },
        },
        "resources": [{"name": "small", "flavor": "m1", "image": "img", "cores": 2, "memory_mb": 2048, "max": 4}],
        "worker_user_data": {"users": [{"name": "admin", "passwd": marker}]},
        "state_file": str(tmp_path / "state.json"),
    }
    local = {
        **openstack,
        "cloud": {"provider": "local", "options": {"socket": absent_socket}},
        "wlm": {"command_prefix": ["/bin/false"]},
    }
    # The local cloud has no auth: the provider refuses the option.
    local_with_auth = {**local, "cloud": {"provider": "local", "options": {"auth": {"password": marker}}}}
    instance_args = {"cluster": "demo", "name": "demo-head", "image": "img", "user_data": user_data}
    tasks = [
        task("dcaas.cluster.scale", {"config": openstack}, "openstack", check_mode=True),
        task("dcaas.cluster.cluster_info", {"config": openstack}, "openstack"),
        task("dcaas.cluster.scale", {"config": local}, "local", check_mode=True),
        task("dcaas.cluster.scale", {"config": local_with_auth}, "local with auth", check_mode=True),
        task(
            "dcaas.cluster.instance",
            {**instance_args, "provider": "openstack", "provider_options": openstack["cloud"]["options"]},
            "openstack",
            check_mode=True,
        ),
        task(
            "dcaas.cluster.instance",
            {**instance_args, "provider": "local", "provider_options": {"socket": absent_socket}},
            "local",
            check_mode=True,
        ),
    ]
    out, logged = playbook(tmp_path, plays=[{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])

    # Each task took the failure path it was meant to (nothing to reach here).
    assert out.count("cannot reach the API") >= 3, out
    assert "no-podman.sock" in out and "cloud.options.auth: unknown field" in out, out
    assert "ignored=6" in out, out
    assert logged.count("Invoked with") == 6, logged
    assert (marker in out, marker in logged) == (False, False)


@pytest.mark.slow
def test_instance_check_mode_at_vvv_reads_well_and_never_shows_the_password(tmp_path):
    # A run that succeeds, on the real podman API (check mode: it only lists containers).
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(DEFAULT_SOCKET.removeprefix("unix://"))
    except OSError as exc:
        pytest.skip(f"podman API not answering at {DEFAULT_SOCKET} ({exc})")
    marker = new_marker()
    cluster = f"leak{secrets.token_hex(3)}"
    args = {
        "cluster": cluster,
        "name": f"{cluster}-head",
        "image": "img",
        "provider_options": {"network": cluster, "extra_labels": {"site.api_key": marker}},
        "user_data": f"#cloud-config\nchpasswd: {{users: [{{name: root, password: {marker}}}]}}\n",
    }
    tasks = [{"name": "Plan the head", "dcaas.cluster.instance": args, "check_mode": True}]
    out, logged = playbook(tmp_path, plays=[{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])

    assert f"name: {cluster}-head" in out and "status: planned" in out and "changed=1" in out, out
    assert (marker in out, marker in logged) == (False, False)


@pytest.mark.slow
@pytest.mark.parametrize("wrong", [False, True], ids=["unreachable-cloud", "config-not-a-mapping"])
def test_inventory_at_vvv_never_shows_the_password(tmp_path, wrong):
    marker = new_marker()
    config: Any = {
        "cluster": "demo",
        "cloud": {
            "provider": "openstack",
            "options": {
                "auth": {"auth_url": f"http://127.0.0.1:{closed_port()}/v3", "username": "u", "password": marker},
                "timeout": 5,
            },
        },
        "resources": [{"name": "small", "flavor": "m1", "image": "img", "cores": 2, "memory_mb": 2048}],
    }
    if wrong:
        config = f"password: {marker}"  # a mapping's text where a mapping belongs
    source = tmp_path / "dynamic_cluster.yml"
    source.write_text(yaml.safe_dump({"plugin": "dcaas.cluster.dynamic_cluster", "config": config}))
    proc = run_ansible("ansible-inventory", "-vvv", "-i", str(source), "--list", timeout=120)
    out = proc.stdout + proc.stderr

    assert ("must be a mapping" if wrong else "cannot observe the cluster") in out, out
    assert marker not in out


@pytest.mark.slow
def test_role_preflight_and_config_file_at_vvv_and_diff_never_show_the_password(tmp_path):
    marker = new_marker()
    config = {
        "cluster": "demo",
        "cloud": {"provider": "openstack", "options": {"auth": {"username": "admin", "password": marker}}},
        "resources": [{"name": "small", "flavor": "m1", "image": "img", "cores": 2, "memory_mb": 2048, "max": 4}],
    }
    role = {
        "role": "dcaas.cluster.dynamic_cluster",
        "vars": {
            "dynamic_cluster_config": config,
            "dynamic_cluster_config_file": str(tmp_path / "etc" / "engine.json"),
            "dynamic_cluster_state_dir": str(tmp_path / "state"),
            "dynamic_cluster_service_state": "stopped",  # no restart handler: no systemd here
        },
    }
    plays = [{"hosts": "localhost", "gather_facts": True, "roles": [role]}]
    # Check mode: the role would also install a systemd unit on this machine.
    tags = "dynamic_cluster_preflight,dynamic_cluster_configure"
    out, logged = playbook(tmp_path, "--check", "--diff", "--tags", tags, plays=plays)

    assert "Write the engine configuration" in out and "failed=0" in out, out
    assert (marker in out, marker in logged) == (False, False)


def preflight_vars(tmp_path, marker: str, resource: str, wheelhouse) -> dict:
    """Variables of controller_preflight.yml: an OpenStack password ``marker``, one resource."""
    return {
        "dcaas_engine": {
            "cluster": "demo",
            "cloud": {"provider": "openstack", "options": {"auth": {"password": marker}}},
            "resources": [{"name": resource, "flavor": "m1", "image": "img", "cores": 2, "memory_mb": 2048}],
        },
        "dcaas_secrets_dir": str(tmp_path / "secrets"),
        "dcaas_wheelhouse": str(wheelhouse),
    }


@pytest.mark.slow
def test_controller_preflight_at_vvv_never_shows_the_password(tmp_path):
    marker = new_marker()
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    (wheelhouse / "podman-5.8.0-py3-none-any.whl").write_text("")  # no download
    variables = preflight_vars(tmp_path, marker, "small", wheelhouse)
    preflight = os.path.join(REPO, "playbooks", "tasks", "controller_preflight.yml")
    check = {
        "name": "The validated configuration is kept",
        "ansible.builtin.assert": {"that": "dcaas_engine_config.resources[0].max == 10", "quiet": True},
    }
    tasks = [{"name": "Controller preflight", "ansible.builtin.import_tasks": preflight}, check]
    plays = [{"hosts": "localhost", "gather_facts": False, "vars": variables, "tasks": tasks}]
    out, logged = playbook(tmp_path, plays=plays)

    assert "failed=0" in out, out
    assert (marker in out, marker in logged) == (False, False)


@pytest.mark.slow
def test_a_bad_engine_config_is_still_named_field_by_field(tmp_path):
    # Hiding the configuration must not hide what is wrong with it.
    marker = new_marker()
    variables = preflight_vars(tmp_path, marker, "Small", tmp_path)
    preflight = os.path.join(REPO, "playbooks", "tasks", "controller_preflight.yml")
    tasks = [{"name": "Controller preflight", "ansible.builtin.import_tasks": preflight}]
    out, _logged = playbook(
        tmp_path, plays=[{"hosts": "localhost", "gather_facts": False, "vars": variables, "tasks": tasks}]
    )

    assert "resources[0].name: 'Small' is not a valid name" in out, out
    assert marker not in out
