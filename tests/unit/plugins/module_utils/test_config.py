"""Config validation: every error names the field and the fix; defaults are filled."""

from __future__ import annotations

import contextlib
import json
import os

import pytest
from config_helpers import GOOD, INT_FIELDS, NAME_FIELDS, PATH_FIELDS, TEXT_FIELDS, names_field, with_field

from ansible_collections.dcaas.cluster.plugins.module_utils.config import (
    SCHEMA,
    ConfigError,
    listen_address,
    load,
    parse,
    shown,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm import registry
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import WorkloadManager


def errors_of(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value.errors


def test_defaults_are_filled():
    cfg = parse(GOOD)
    assert cfg.wlm_type == "slurm" and cfg.provider == "local" and cfg.wlm_nodes == "dynamic"
    assert cfg.timers.idle_timeout == 600 and cfg.limits.max_launches_per_cycle == 10
    assert (cfg.timers.prewarm, cfg.timers.quiet) == (60, 1200)
    r = cfg.resources[0]
    assert (r.min, r.max, r.spare, r.priority, r.accounts) == (0, 10, 1, 100, ())


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"cluster": "Demo_1"}, "cluster: 'Demo_1' is not a valid name"),
        ({"wlm": {"type": "pbs"}}, "wlm.type: unknown workload manager 'pbs'; use one of "),
        ({"wlm": {"type": "torque"}}, "wlm.type: the 'torque' adapter is not available in this version"),
        ({"wlm": {"nodes": "static"}}, "wlm.nodes: 'static' is not one of dynamic, cloud"),
        ({"timers": {"prewarm": -1}}, "timers.prewarm: must be at least 0, got -1"),
        ({"timers": {"quiet": -1}}, "timers.quiet: must be at least 0, got -1"),
        ({"cloud": {"provider": "aws"}}, "cloud.provider: 'aws' is not one of local, openstack"),
        ({"timers": {"idle_timeout": "soon"}}, "timers.idle_timeout: expected an integer, got 'soon'"),
        ({"timers": {"idle_timeout": -5}}, "timers.idle_timeout: must be at least 0, got -5"),
        ({"timers": {"backoff_initial": 900, "backoff_max": 60}}, "timers.backoff_initial: must not be above"),
        ({"limits": {"max_launches": 3}}, "limits.max_launches: unknown field; known fields here are"),
        ({"resources": []}, "resources: at least one resource is needed"),
        ({"resources": "small"}, "resources: expected a list"),
    ],
)
def test_top_level_errors_name_the_field(patch, expected):
    assert any(expected in e for e in errors_of({**GOOD, **patch})), errors_of({**GOOD, **patch})


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"flavor": None}, "resources[0].flavor: required field is missing"),
        ({"cores": None}, "resources[0].cores: required field is missing; give the size of flavor 'm1.small'"),
        ({"min": 5, "max": 2}, "resources[0]: min=5 is above max=2; lower min or raise max"),
        ({"accounts": "chem"}, "resources[0].accounts: expected a list"),
        ({"flavour": "x"}, "resources[0].flavour: unknown field"),
        ({"name": "Small"}, "resources[0].name: 'Small' is not a valid name"),
    ],
)
def test_resource_errors_name_the_field(patch, expected):
    res = {**GOOD["resources"][0], **patch}
    res = {k: v for k, v in res.items() if v is not None}
    errs = errors_of({**GOOD, "resources": [res]})
    assert any(expected in e for e in errs), errs


def test_duplicate_resource_names():
    errs = errors_of({**GOOD, "resources": GOOD["resources"] * 2})
    assert any("resources[1].name: 'small' is used by another resource" in e for e in errs)


def test_all_problems_are_reported_at_once():
    errs = errors_of({"cluster": "X", "resources": [{"name": "a"}], "bogus": 1})
    assert len(errs) >= 5


def test_load_json_and_yaml(tmp_path):
    j = tmp_path / "engine.json"
    j.write_text(json.dumps(GOOD))
    y = tmp_path / "engine.yml"
    y.write_text("cluster: demo\nresources:\n  - {name: small, flavor: m1, image: w, cores: 2, memory_mb: 1024}\n")
    assert load(str(j)).cluster == load(str(y)).cluster == "demo"


def test_load_reports_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load(str(bad))


# --- bad values are refused, never silently accepted (issue 13, item 3) ---


def field_errors(path: str, value, **others) -> list[str]:
    """The errors parse reports for the field at path when it holds value (and top-level fields others)."""
    try:
        parse({**with_field(path, value), **others})
    except ConfigError as exc:
        return [e for e in exc.errors if names_field(e, path)]
    return []


def error_for(path: str, value, **others) -> str:
    errs = field_errors(path, value, **others)
    assert errs, (path, value)
    return errs[0]


def test_every_int_field_has_a_bound_and_the_docs_give_it():
    def int_paths(options: dict, path: str):
        for key, spec in options.items():
            sub = f"{path}.{key}" if path else key
            if spec.get("type") == "int":
                yield sub, spec
            yield from int_paths(spec.get("options") or {}, f"{sub}.0" if spec.get("type") == "list" else sub)

    found = {**dict(int_paths(SCHEMA, "")), **dict(int_paths(registry.adapter("slurm").OPTION_SPEC, "wlm.options"))}
    assert set(found) == set(INT_FIELDS)
    with open(os.path.join(os.path.dirname(__file__), "../../../../docs/engine-config.md"), encoding="utf-8") as fh:
        docs = fh.read()
    for path, spec in found.items():
        assert (spec["min"], spec["max"]) == INT_FIELDS[path]
        assert f"`{path.split('.')[-1]}`" in docs and str(spec["max"]) in docs, path


@pytest.mark.parametrize("path", sorted(INT_FIELDS))
def test_integers_beyond_their_bounds_are_refused(path):
    low, high = INT_FIELDS[path]
    assert f"must be at most {high}" in error_for(path, high + 1)
    assert f"must be at least {low}" in error_for(path, low - 1)
    # an interval of 10**30 killed the daemon (OverflowError in Event.wait)
    assert "must be at most" in error_for(path, 10**30)
    # a huge number is described, not printed (repr refuses 4300+ digits)
    assert "about 5001 digits" in error_for(path, 10**5000)
    for bound in (low, high):  # (backoff_initial at its high bound is above backoff_max: another error)
        assert not [e for e in field_errors(path, bound) if "must be at" in e], bound


@pytest.mark.parametrize(
    "value", [1.5, 10.0, float("nan"), float("inf"), True, False, "10s", " 10", "1_0", "+10", "1e3", "", "٣"]
)
def test_integers_take_whole_numbers_and_digit_strings_only(value):
    assert "expected an integer" in error_for("timers.interval", value)
    assert parse(with_field("timers.interval", "45")).timers.interval == 45  # as a template renders it
    assert parse(with_field("resources.0.priority", "-5")).resources[0].priority == -5


@pytest.mark.parametrize("path", [*NAME_FIELDS, *TEXT_FIELDS, *PATH_FIELDS, "status_listen"])
@pytest.mark.parametrize("value", ["", "a\x00b", "a\nb", "ab\n", "a\tb", "a\x7fb", "a\x85b", "a\u2028b", "a\ud800b", 7])
def test_names_paths_and_words_refuse_empty_strings_and_control_characters(path, value):
    error_for(path, value)


@pytest.mark.parametrize("field", ["state_file", "status_token_file"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "must not be empty"),
        ("state.json", "is not an absolute path"),
        ("./state.json", "is not an absolute path"),
        ("/var/lib/dcaas/", "names a directory"),
        ("/var/lib/dcaas/..", "names a directory"),
        ("/", "names a directory"),
        ("/var/lib/dcaas/state\n.json", "control character"),
        ("/" + "x" * 5000, "longer than 4096"),
    ],
)
def test_state_and_token_files_must_be_absolute_file_paths(field, value, expected):
    # state_file: "" was accepted: timers were never saved, idle nodes never drained
    assert expected in error_for(field, value)


def test_state_and_token_files_must_differ():
    errs = errors_of({**GOOD, "state_file": "/var/lib/x", "status_token_file": "/var/lib/x"})
    assert any(e.startswith("status_token_file: must not be the state_file") for e in errs)


@pytest.mark.parametrize(
    ("listen", "host", "port", "loopback"),
    [
        ("127.0.0.1:8655", "127.0.0.1", 8655, True),
        ("127.1.2.3:1", "127.1.2.3", 1, True),
        ("localhost:65535", "localhost", 65535, True),
        ("[::1]:8655", "::1", 8655, True),
        ("0.0.0.0:8655", "0.0.0.0", 8655, False),
        ("[::]:8655", "::", 8655, False),
        ("10.1.2.3:80", "10.1.2.3", 80, False),
        ("head.example.org:8655", "head.example.org", 8655, False),
        ("[fe80::1]:1", "fe80::1", 1, False),
        ("[::ffff:127.0.0.1]:1", "::ffff:127.0.0.1", 1, False),
    ],
)
def test_status_listen_beyond_loopback_needs_the_token(listen, host, port, loopback):
    assert listen_address(listen) == (host, port)
    assert parse({**GOOD, "status_listen": listen}).status_auth == "token"
    if loopback:
        assert parse({**GOOD, "status_listen": listen, "status_auth": "none"}).status_listen == listen
    else:
        assert "keep status_auth: token" in error_for("status_listen", listen, status_auth="none")


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("8655", "give host:port"),
        ("localhost", "give host:port"),
        (":8655", "give a host"),
        ("::1:8655", "in brackets"),
        ("[::1]8655", "in brackets"),
        ("[127.0.0.1]:80", "not an IPv6 address"),
        ("[::1]:", "not a number from 1 to 65535"),
        ("host:0", "port 0 would listen on another free port at every start; give a fixed port"),
        ("[::1]:00000", "port 0 would listen"),
        ("host:65536", "not a number from 1 to 65535"),
        ("host:http", "not a number from 1 to 65535"),
        ("host:+80", "not a number from 1 to 65535"),
        ("under_score:80", "neither an IP address nor a host name"),
        ("-host:80", "neither an IP address nor a host name"),
        ("1.2.3:80", "neither an IP address nor a host name"),
        ("256.0.0.1:80", "neither an IP address nor a host name"),
        ("a..b:80", "neither an IP address nor a host name"),
        ("x" * 64 + ":80", "neither an IP address nor a host name"),
    ],
)
def test_status_listen_must_be_host_and_port(listen, expected):
    assert expected in error_for("status_listen", listen)


@pytest.mark.parametrize("path", ["cloud.options", "resources.0.options", "worker_user_data"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({1: "x"}, "key int 1 is not a string"),
        ({"a": {"b": [b"bytes"]}}, "a bytes is not plain data"),
        ({"a": float("nan")}, "not a finite number"),
        ({"a": [float("-inf")]}, "not a finite number"),
        ({"a": {1, 2}}, "set"),
        ({"a": 2**70}, "fit in 64 bits"),
        ({"a": "\ud800"}, "lone surrogate"),
        ("text", "expected a mapping"),
    ],
)
def test_free_form_settings_must_be_plain_json_data(path, value, expected):
    assert expected in error_for(path, value)
    plain = {"write_files": [{"path": "/etc/motd", "content": "hi\n\tthere"}], "n": 1.5, "x": None, "i": -(2**63)}
    assert field_errors(path, plain) == []  # control characters are fine in free text


def test_keys_that_are_not_strings_are_refused():
    errs = errors_of({**GOOD, 1: "x", ("a", "b"): 2})
    assert any("key int 1 is not a string" in e for e in errs) and any("key tuple" in e for e in errs)
    assert "key int 5 is not a string" in error_for("timers", {5: 1})


def test_a_name_with_a_trailing_newline_is_refused():
    # the name pattern used to end in "$", which also matches before a final newline
    assert "is not a valid name" in error_for("cluster", "demo\n")
    assert "is not a valid name" in error_for("resources.0.name", "small\n")


def test_resource_names_of_the_wrong_type_do_not_crash_the_checker():
    bad = {**GOOD["resources"][0], "name": ["small"]}
    errs = errors_of({**GOOD, "resources": [bad, bad]})
    assert any(e.startswith("resources[1].name: expected a string") for e in errs)


def test_values_in_messages_are_cut_and_their_size_given():
    err = error_for("resources.0.flavor", "f" * 100_000 + "\n")
    assert len(err) < 300 and "(100001 characters)" in err
    err = error_for("timers.interval", ["x" * 1000] * 1000)
    assert len(err) < 300 and "(1000 entries)" in err
    assert shown("é") == "'\\xe9'"  # ASCII only: no terminal escapes, no multi-byte blow-up


def test_the_message_stays_short_whatever_the_number_of_problems():
    bad = {"name": "X" * 10_000, "flavor": "", "image": "\n" * 10_000, "cores": "x" * 10_000}
    with pytest.raises(ConfigError) as info:
        parse({**GOOD, "resources": [bad] * 2000})
    assert len(info.value.errors) > 2000  # all of them are listed in .errors...
    assert len(str(info.value).encode()) < 4096 and "more problems" in str(info.value)  # ...the first few in the text


def test_a_tree_too_big_or_too_deep_is_refused_at_once():
    deep: list = []
    for _level in range(10_000):
        deep = [deep]
    assert "nested more than 64 levels" in errors_of({**GOOD, "worker_user_data": {"a": deep}})[0]
    bomb: list = ["lol"] * 10
    for _level in range(30):
        bomb = [bomb] * 10  # 10**30 leaves, a few hundred objects
    errs = errors_of({**GOOD, "worker_user_data": {"a": bomb}})
    assert len(errs) == 1 and "more than 100000 values" in errs[0]
    cyclic: dict = {}
    cyclic["self"] = cyclic
    assert len(errors_of({**GOOD, "wlm": {"options": cyclic}})) == 1


# --- files: encoding, size, duplicate keys, YAML aliases ---


def load_text(tmp_path, name: str, content: str | bytes) -> list[str]:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert len(str(info.value).encode()) < 4096
    return info.value.errors


GOOD_YAML = "cluster: demo\nresources:\n  - {name: small, flavor: m1, image: w, cores: 2, memory_mb: 1024}\n"


def test_duplicate_keys_are_refused_in_json_and_yaml(tmp_path):
    text = json.dumps(GOOD)[:-1] + ', "cluster": "other"}'
    assert "key 'cluster' appears twice" in load_text(tmp_path, "e.json", text)[0]
    errs = load_text(tmp_path, "e.yml", GOOD_YAML + "timers:\n  interval: 5\n  interval: 50\n")
    assert "line 6: key 'interval' appears twice" in errs[0]
    # a key merged in with '<<' may be overridden: that is what merging is for
    path = tmp_path / "merge.yml"
    path.write_text(
        "cluster: demo\nresources:\n  - &r {name: small, flavor: m1, image: w, cores: 2, memory_mb: 1024}\n"
        "  - {<<: *r, name: big, cores: 8}\n"
    )
    assert [r.cores for r in load(str(path)).resources] == [2, 8]


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    assert "not UTF-8 text (byte 11)" in load_text(tmp_path, "e.json", b'{"cluster":\xff"demo"}')[0]
    assert "not UTF-8" in load_text(tmp_path, "e.yml", GOOD_YAML.encode("utf-16"))[0]


def test_a_file_too_large_is_refused(tmp_path):
    errs = load_text(tmp_path, "e.json", json.dumps({**GOOD, "pad": "x" * (1024 * 1024)}))
    assert "larger than 1048576 bytes" in errs[0]


def test_a_yaml_alias_bomb_is_refused_with_a_short_message(tmp_path):
    lines = [f"a: &a [{', '.join(['lol'] * 12)}]"]
    for prev, name in zip("abcdefghi", "bcdefghij"):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 12)}]")  # 9 * 12 aliases, 12**10 leaves
    bomb = "\n".join(lines) + "\n"
    assert "more than 100 YAML aliases" in load_text(tmp_path, "e.yml", bomb)[0]
    few = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, n in zip("abcdef", "bcdefg")
    )  # 60 aliases, 10**7 leaves
    errs = load_text(tmp_path, "f.yml", GOOD_YAML + few)
    assert "more than 100000 values" in errs[0]


@pytest.mark.parametrize(("name", "text"), [("e.json", "[" * 5000), ("e.yml", "[" * 5000)])
def test_nesting_too_deep_for_the_parser_is_refused(tmp_path, name, text):
    load_text(tmp_path, name, text)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("e.json", '{"a": 1' + "0" * 5000 + "}", "not valid JSON"),
        ("e.yml", "a: 1" + "0" * 5000 + "\n", "not valid YAML"),
        ("e.yml", "a: 2001-02-30\n", "not valid YAML"),
        ("e.yml", "a: !!binary 'YQ'\n", "not valid YAML"),
        ("e.yml", "", "must be a mapping, got NoneType"),
        ("e.yml", "a: b\n---\nc: d\n", "not valid YAML"),
    ],
)
def test_files_that_trip_the_parsers_give_config_errors(tmp_path, name, text, expected):
    assert expected in load_text(tmp_path, name, text)[0]


def test_unreadable_paths_give_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(str(tmp_path))  # a directory
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(str(tmp_path / "a\x00b.json"))


@pytest.mark.parametrize("field", ["cloud.options", "wlm.options", "worker_user_data"])
def test_a_wrongly_typed_settings_mapping_is_not_quoted(field):
    # Such a value is often the credentials written on one line.
    section, _dot, key = field.partition(".")
    data = {**GOOD, section: {key: "auth: {password: s3cret-marker}"} if key else "password: s3cret-marker"}
    with pytest.raises(ConfigError) as err:
        parse(data)
    assert f"{field}: expected a mapping, got str" in str(err.value) and "s3cret-marker" not in str(err.value)


@pytest.mark.parametrize(
    ("path", "problem"),
    [("", "state_file: "), ("state.json", "is not an absolute path"), ("/var/lib/dcaas/", "names a directory")],
)
def test_a_front_end_state_file_is_checked_as_the_loader_checks_it(path, problem):
    from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import load_config

    with pytest.raises(ConfigError, match=problem):
        load_config(GOOD, None, path)
    assert load_config(GOOD, None, "/tmp/x/state.json").state_file == "/tmp/x/state.json"


# --- the workload manager's adapter: its options, capabilities and resource options ---


class NoCloudNodes(WorkloadManager):
    """An adapter with no cloud nodes, one option and one resource option."""

    name = "plain"
    OPTION_SPEC = {"port": {"type": "int", "default": 7, "min": 1, "max": 65535}}
    RESOURCE_OPTION_SPEC = {"plain_queue": {"type": "text"}}


@pytest.fixture
def plain_adapter(monkeypatch):
    monkeypatch.setitem(registry.ADAPTERS, "plain", NoCloudNodes)
    return {**GOOD, "wlm": {"type": "plain"}}


def test_wlm_options_are_the_adapters_own_with_defaults_filled(plain_adapter):
    assert parse(plain_adapter).wlm_options == {"port": 7}
    assert parse(with_field("wlm.options.port", "80", plain_adapter)).wlm_options == {"port": 80}
    cfg = parse(with_field("wlm.options.memory_reserve_mb", "512"))  # the default adapter, slurm
    assert cfg.wlm_options == {"memory_reserve_mb": 512}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"conf_sever": "head"}, "wlm.options.conf_sever: unknown field; known fields here are: conf_server, "),
        ({"memory_reserve_mb": "lots"}, "wlm.options.memory_reserve_mb: expected an integer, got 'lots'"),
        ({"memory_reserve_mb": -1}, "wlm.options.memory_reserve_mb: must be at least 0"),
        ({"munge_key_file": "munge.key"}, "wlm.options.munge_key_file: 'munge.key' is not an absolute path"),
        ({"conf_server": ["head"]}, "wlm.options.conf_server: expected a string, got list"),
        ({5: "x"}, "wlm.options: key int 5 is not a string"),
    ],
)
def test_wlm_options_are_checked_against_the_adapters_spec(options, expected):
    errs = errors_of({**GOOD, "wlm": {"options": options}})
    assert any(e.startswith(expected) for e in errs), errs


def test_an_option_of_another_adapter_is_refused(plain_adapter):
    errs = errors_of(with_field("wlm.options.munge_key_file", "/etc/munge/munge.key", plain_adapter))
    assert errs == ["wlm.options.munge_key_file: unknown field; known fields here are: port"]


def test_cloud_nodes_are_refused_at_load_for_an_adapter_without_them(plain_adapter):
    errs = errors_of(with_field("wlm.nodes", "cloud", plain_adapter))
    assert errs == ["wlm.nodes: plain has no cloud nodes; use wlm.nodes: dynamic"]
    assert parse(with_field("wlm.nodes", "cloud")).wlm_nodes == "cloud"  # slurm has them


def test_the_adapters_resource_options_are_checked_and_kept_from_the_cloud(plain_adapter):
    options = {"network": "n1", "plain_queue": "fast", "slurm_node_conf": {"Weight": 1}}
    res = parse(with_field("resources.0.options", options, plain_adapter)).resources[0]
    # slurm_node_conf is not this adapter's: it stays with the cloud, which judges it.
    assert res.wlm_options == {"plain_queue": "fast"}
    assert res.options == {"network": "n1", "slurm_node_conf": {"Weight": 1}}
    res = parse(with_field("resources.0.options", options)).resources[0]
    assert res.wlm_options == {"slurm_node_conf": {"Weight": 1}}
    assert res.options == {"network": "n1", "plain_queue": "fast"}
    errs = errors_of(with_field("resources.0.options", {"plain_queue": ""}, plain_adapter))
    assert errs == ["resources[0].options.plain_queue: must not be empty; give a value, or leave it out"]
    errs = errors_of(with_field("resources.0.options.slurm_node_conf", "Weight=1"))
    assert errs == ["resources[0].options.slurm_node_conf: expected a mapping, got str"]


@pytest.mark.parametrize("name", registry.names())
@pytest.mark.parametrize("value", [None, "x", "/x/y", 5, 10**30, ["x"], {"x": 1}, True])
def test_every_adapters_option_specs_are_complete_for_the_loader(name, value):
    # A spec the validator cannot apply (an int without bounds, a path
    # without an example) would raise KeyError out of parse, not ConfigError.
    cls = registry.adapter(name)
    options = dict.fromkeys(cls.RESOURCE_OPTION_SPEC, value)
    data = with_field("resources.0.options", options, {**GOOD, "wlm": {"type": name}})
    data["wlm"]["options"] = dict.fromkeys(cls.OPTION_SPEC, value)
    with contextlib.suppress(ConfigError):
        parse(data)
