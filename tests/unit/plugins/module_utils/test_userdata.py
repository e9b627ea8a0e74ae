"""Worker user-data rendering: pure, and read back the way cloud-init reads it (PyYAML)."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.module_utils.userdata import UserDataError, merge, render

SECRET = "c3VwZXItc2VjcmV0LW11bmdlLWtleQ=="  # what a munge key looks like in b64

JOIN = {
    "write_files": [
        {"path": "/etc/munge/munge.key", "content": SECRET, "encoding": "b64", "permissions": "0400", "owner": "munge"},
        {"path": "/etc/default/slurmd", "content": "SLURMD_OPTIONS='-Z --conf-server head'\n"},
    ],
    "runcmd": [["systemctl", "restart", "munge"], ["systemctl", "start", "slurmd"]],
}


def load(text: str) -> dict:
    header = text.partition("\n")[0]
    assert header == "#cloud-config"
    return yaml.safe_load(text)


def test_header_then_sorted_json_that_yaml_reads_back() -> None:
    text = render(JOIN)
    assert text.startswith("#cloud-config\n") and text.endswith("}\n")
    body = text.split("\n", 1)[1]
    assert json.loads(body) == load(text) == JOIN
    assert list(json.loads(body)) == sorted(json.loads(body))


def test_same_input_same_bytes() -> None:
    assert render(JOIN, {"packages": ["htop"]}) == render(JOIN, {"packages": ["htop"]})


def test_extra_is_merged_with_site_parts_before_join_steps() -> None:
    extra = {
        "ssh_authorized_keys": ["ssh-ed25519 AAAA admin@site", "ssh-ed25519 AAAA admin@site"],
        "packages": ["htop", "htop"],
        "bootcmd": ["echo early > /run/early"],
        "runcmd": [["mount", "-a"]],
        "write_files": [{"path": "/etc/motd", "content": "cloud worker\n"}],
        "package_update": False,
    }
    doc = load(render(JOIN, extra))
    assert doc["runcmd"] == [["mount", "-a"], *JOIN["runcmd"]]
    assert [f["path"] for f in doc["write_files"]] == ["/etc/motd", "/etc/munge/munge.key", "/etc/default/slurmd"]
    assert doc["packages"] == ["htop"]
    assert doc["ssh_authorized_keys"] == ["ssh-ed25519 AAAA admin@site"]
    assert doc["bootcmd"] == ["echo early > /run/early"]
    assert doc["package_update"] is False


def test_inputs_are_not_modified() -> None:
    join = json.loads(json.dumps(JOIN))
    extra = {"runcmd": [["true"]]}
    render(join, extra)
    assert join == JOIN and extra == {"runcmd": [["true"]]}


def test_empty_join_and_no_extra() -> None:
    assert load(render({})) == {}


def test_b64_file_content_survives() -> None:
    doc = load(render(JOIN))
    key = doc["write_files"][0]
    assert key["encoding"] == "b64" and base64.b64decode(key["content"]) == b"super-secret-munge-key"


@pytest.mark.parametrize(
    ("join", "extra", "words"),
    [
        ([], None, "join: expected a mapping, got list"),
        ({"runcmds": []}, None, "join.runcmds: not a supported cloud-config key"),
        ({"runcmd": "systemctl start slurmd"}, None, "join.runcmd: expected a list of commands, got str"),
        ({"runcmd": [["systemctl", 1]]}, None, "join.runcmd[0]: argv items must be strings; item 1 is int"),
        ({"runcmd": [[]]}, None, "join.runcmd[0]: empty argv list"),
        ({"runcmd": [{"cmd": "x"}]}, None, "join.runcmd[0]: expected an argv list or a shell string, got dict"),
        ({"write_files": [{"content": "x"}]}, None, "join.write_files[0].path: expected an absolute path"),
        ({"write_files": [{"path": "etc/x"}]}, None, "join.write_files[0].path: expected an absolute path"),
        ({"write_files": [{"path": "/x", "content": b"x"}]}, None, "(/x).content: expected a string"),
        ({"write_files": [{"path": "/x", "permissions": 600}]}, None, "(/x).permissions: expected an octal string"),
        ({"write_files": [{"path": "/x", "encoding": "gzip"}]}, None, "(/x).encoding: 'gzip' is not supported"),
        ({"write_files": [{"path": "/x", "mode": "0600"}]}, None, "(/x): unknown field(s) mode"),
        ({"write_files": [{"path": "/x", "defer": "yes"}]}, None, "(/x).defer: expected true or false"),
        ({}, {"packages": "htop"}, "extra.packages: expected a list of strings, got str"),
        ({}, {"packages": ["htop", 3]}, "extra.packages[1]: expected a string, got int"),
        ({}, {"users": [{"groups": "wheel"}]}, "extra.users[0].name: every user mapping needs a name"),
        ({}, {"mounts": [["server:/home", 1]]}, "extra.mounts[0]: expected a list of fstab fields"),
        ({}, {"timezone": 1}, "extra.timezone: expected str, got int"),
        ({"package_update": True}, {"package_update": False}, "package_update: extra and join set different"),
        ({}, "packages: [htop]", "extra: expected a mapping, got str"),
    ],
)
def test_bad_shapes_are_named(join, extra, words) -> None:
    with pytest.raises(UserDataError) as err:
        render(join, extra)
    assert words in str(err.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(UserDataError) as err:
        render({"runcmd": "x", "write_files": "y"}, {"packages": 1})
    assert len(err.value.errors) == 3


def test_same_path_twice_is_refused_unless_appending() -> None:
    extra = {"write_files": [{"path": "/etc/munge/munge.key", "content": "AAAA", "encoding": "b64"}]}
    with pytest.raises(UserDataError) as err:
        render(JOIN, extra)
    assert "/etc/munge/munge.key is written twice" in str(err.value)
    extra = {"write_files": [{"path": "/etc/default/slurmd", "content": "X=1\n", "append": True}]}
    assert len(merge(JOIN, extra)["write_files"]) == 3


def test_secrets_never_appear_in_errors() -> None:
    secret = "hunter2-munge-key"
    bad = {
        "write_files": [
            {"path": "/etc/munge/munge.key", "content": secret, "encoding": "b64", "permissions": 400},
            {"path": "/etc/ldap.secret", "content": secret, "unknown": secret},
        ],
        "runcmd": [["ldapadd", "-w", secret, 5], secret.encode()],
    }
    with pytest.raises(UserDataError) as err:
        render(bad, {"bootcmd": [[secret, None]], "timezone": [secret]})
    assert secret not in str(err.value)
    assert "not valid base64" in str(err.value)  # the problem is still named


@given(st.text())
def test_any_text_content_reads_back_unchanged(content: str) -> None:
    # YAML 1.1 readers fold line separators and reject some code points that
    # JSON leaves raw; what cloud-init reads must be what the adapter wrote.
    if any(0xD800 <= ord(c) <= 0xDFFF for c in content):
        return  # lone surrogates cannot even be encoded to UTF-8 for the seed file
    join = {"write_files": [{"path": "/etc/x", "content": content}], "runcmd": [["echo", content or "x"]]}
    text = render(join)
    text.encode("utf-8")
    assert load(text) == join


@given(st.lists(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4), max_size=5))
def test_runcmd_order_is_kept(commands: list[list[str]]) -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for cmd in commands for arg in cmd for c in arg):
        return
    assert load(render({"runcmd": commands}, {"runcmd": [["site"]]}))["runcmd"] == [["site"], *commands]
