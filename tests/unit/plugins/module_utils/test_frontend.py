"""The one error translator (frontend.explain) and build_engine's errors.

Every front end (the modules, the inventory plugin, the daemon and dcaasd)
shows an error through explain: bad input as its own message, which names
the field, and anything else as "what failed: Class: message"; never a
credential, never a whole huge message.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError
from ansible_collections.dcaas.cluster.plugins.module_utils.config import ConfigError, parse
from ansible_collections.dcaas.cluster.plugins.module_utils.errors import ERROR_CHARS
from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import build_engine, explain
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateError

SECRET = "s3cretPassw0rdXYZ"
RESOURCES = [{"name": "small", "flavor": "m1", "image": "img", "cores": 2, "memory_mb": 2048}]

# Each error kind: the exception, whether it is bad input, its kind, how its message starts.
KINDS = [
    (ConfigError([f"cloud.options.password: {SECRET}"]), True, "config", "invalid dcaas engine configuration:"),
    (CloudError("config", f"cloud.options.auth: {SECRET}"), True, "config", "cloud.options.auth: "),
    (CloudError("transient", f"https://u:{SECRET}@keystone"), False, "transient", "cannot observe the cluster: Cloud"),
    (CloudError("quota", f"quota of {SECRET}"), False, "quota", "cannot observe the cluster: CloudError: quota"),
    (CloudError("capacity", f"no valid host {SECRET}"), False, "capacity", "cannot observe the cluster: CloudError"),
    (CommandError(["squeue"], 1, "", f"auth {SECRET}"), False, "command", "cannot observe the cluster: CommandError"),
    (StateError(f"state {SECRET}"), False, "state", "cannot observe the cluster: StateError: state"),
    (PermissionError(13, "Permission denied", f"/x/{SECRET}"), False, "state", "cannot observe the cluster: Perm"),
    (KeyError(SECRET), False, "internal", "cannot observe the cluster: KeyError: "),
    (ValueError(f"cannot read node {SECRET}"), False, "internal", "cannot observe the cluster: ValueError: cannot"),
]


@pytest.mark.parametrize(("exc", "user_input", "kind", "start"), KINDS, ids=lambda v: type(v).__name__)
def test_each_error_kind_reads_as_one_message_and_says_whose_move_it_is(exc, user_input, kind, start):
    failure = explain(exc, {SECRET})
    assert (failure.user_input, failure.kind) == (user_input, kind)
    assert failure.message.startswith(start), failure.message
    assert SECRET not in failure.message and "********" in failure.message
    assert "Traceback" not in failure.message


def test_a_cloud_error_keeps_its_kind():
    assert [explain(CloudError(k, "x")).kind for k in ("config", "quota", "capacity", "transient")] == [
        "config",
        "quota",
        "capacity",
        "transient",
    ]


def test_a_permission_error_says_run_as_root():
    failure = explain(PermissionError(13, "Permission denied", "/var/lib/dcaas/state.json.lock"), during="x failed")
    assert failure.message.startswith("x failed: PermissionError: [Errno 13]") and failure.message.endswith(
        "; run as root"
    )


def test_without_during_the_message_is_the_class_and_text():
    assert explain(CommandError(["sinfo"], 1, "", "down"), during="").message.startswith("CommandError: command")


@pytest.mark.parametrize("where", [0, ERROR_CHARS - 5, ERROR_CHARS - 1, 5000])
def test_a_huge_message_is_cut_and_a_secret_is_masked_before_the_cut(where):
    # A secret across the cut would leave its first characters if the cut came first.
    text = "x" * where + SECRET + "y" * 10_000
    for exc in (CloudError("config", text), CloudError("transient", text), ValueError(text)):
        message = explain(exc, {SECRET}).message
        assert len(message) < ERROR_CHARS + 120, len(message)
        assert SECRET[:6] not in message and "more characters" in message


def test_a_config_error_is_shown_whole_problem_by_problem():
    exc = ConfigError([f"resources[{i}].name: bad" for i in range(30)])
    failure = explain(exc)
    assert failure.message == str(exc) and "resources[9].name: bad" in failure.message


def test_an_exception_whose_text_fails_is_still_reported():
    class Broken(Exception):
        def __str__(self):
            raise RuntimeError("no")

    assert explain(Broken()).message == "cannot observe the cluster: Broken"


# --- build_engine: the errors of building an engine from a valid config -------


def test_bad_provider_options_stay_a_config_cloud_error():
    cfg = parse({"cluster": "demo", "cloud": {"options": {"sockt": "unix:///x"}}, "resources": RESOURCES})
    with pytest.raises(CloudError) as err:
        build_engine(cfg)
    assert err.value.kind == "config" and "cloud.options.sockt: unknown field" in str(err.value)
    assert explain(err.value).user_input


def test_a_workload_manager_this_version_lacks_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        parse({"cluster": "demo", "wlm": {"type": "torque"}, "resources": RESOURCES})
    assert "wlm.type: the 'torque' adapter is not available" in str(err.value)
    # A Config made without parse (a caller's own) meets the same refusal in build_engine.
    cfg = replace(parse({"cluster": "demo", "resources": RESOURCES}), wlm_type="torque")
    with pytest.raises(ConfigError) as err:
        build_engine(cfg)
    assert "wlm.type: the 'torque' adapter is not available" in str(err.value)
