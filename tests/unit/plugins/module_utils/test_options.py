"""The one option validator (options.py): each rule, any input, and the same
wording from its three callers (the engine config, the local cloud, OpenStack).

DCAAS_FUZZ_EXAMPLES=5000 runs more examples than CI's.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.local import LocalProvider
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.openstack import OpenStackProvider
from ansible_collections.dcaas.cluster.plugins.module_utils.config import ConfigError, parse, validated
from ansible_collections.dcaas.cluster.plugins.module_utils.options import check, check_fields, join
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.registry import adapter

fuzz = settings(max_examples=int(os.environ.get("DCAAS_FUZZ_EXAMPLES", "150")), deadline=None)


def problems(value, spec: dict, path: str = "opts.x") -> list[str]:
    errors: list[str] = []
    check(value, spec, path, errors)
    return errors


# --- each rule -------------------------------------------------------------------

RULES = [
    # (spec, a good value, a bad value, what the message says)
    ({"type": "int", "min": 1, "max": 9}, "5", True, "opts.x: expected an integer, got bool True; write digits only"),
    ({"type": "int", "min": 1, "max": 9}, 1, 0, "opts.x: must be at least 1, got 0"),
    ({"type": "int", "max": 9, "unit": " MiB"}, -5, 10, "opts.x: must be at most 9 MiB, got 10"),
    ({"type": "number", "above": 0, "unit": " s"}, 0.5, 0, "opts.x: must be more than 0 s, got 0"),
    ({"type": "number"}, 2, float("nan"), "opts.x: expected a number, got float nan"),
    ({"type": "bool"}, False, "yes", "opts.x: expected true or false, got 'yes'"),
    ({"type": "name"}, "small-1", "Small", "opts.x: 'Small' is not a valid name; use lower-case letters"),
    ({"type": "text", "what": "a zone"}, "az 1", "", "opts.x: must not be empty; give a zone"),
    ({"type": "text"}, "ok", "a\nb", "opts.x: 'a\\nb' holds a control character ('\\n' at 1); remove it"),
    ({"type": "text"}, "x" * 255, "x" * 256, "is longer than 255 characters"),
    ({"type": "text", "pattern": re.compile("[a-z]+"), "what": "letters"}, "ab", "a1", "opts.x: 'a1' is not valid"),
    ({"type": "path", "default": "/a/b"}, "/a/b", "a/b", "opts.x: 'a/b' is not an absolute path; give one such as"),
    ({"type": "path"}, "/a/b", "/a/", "opts.x: '/a/' names a directory; give a file in it, such as /etc/dcaas/file"),
    ({"type": "path", "directory": True}, "/home/", "home", "opts.x: 'home' is not an absolute path"),
    ({"type": "str", "choices": ["a", "b"]}, "b", "c", "opts.x: 'c' is not one of a, b"),
    ({"type": "str"}, "", 3, "opts.x: expected a string, got int 3"),
    ({"type": "list", "elements": "text"}, ["a"], "a", "opts.x: expected a list, got 'a'"),
    ({"type": "list", "elements": "text"}, [], ["a", ""], "opts.x[1]: must not be empty"),
    ({"type": "list", "elements": {"type": "int"}}, [1], [1, "z"], "opts.x[1]: expected an integer, got 'z'"),
    ({"type": "list", "elements": "text", "if_empty": "leave it out"}, ["a"], [], "opts.x: must not be empty; leave"),
    ({"type": "dict"}, {"a": [1]}, ["password"], "opts.x: expected a mapping, got list"),
    ({"type": "dict"}, {"a": 1.5}, {"a": float("inf")}, "opts.x.a: inf is not a finite number"),
    ({"type": "dict", "options": {"a": {"type": "int"}}}, {"a": 1}, {"b": 1}, "opts.x.b: unknown field; known fiel"),
    ({"type": "dict", "options": {"a": {"required": True}}}, {"a": "z"}, {}, "opts.x.a: required field is missing"),
    ({"type": "dict", "keys": {"type": "name"}}, {"ab": 1}, {"Ab": 1}, "opts.x.Ab: 'Ab' is not a valid name"),
    ({"type": "dict", "values": {"type": "bool"}}, {"a": True}, {"a": 1}, "opts.x.a: expected true or false"),
    ({"type": "dict", "values": {"type": "bool"}}, {}, {1: True}, "opts.x: key int 1 is not a string"),
    (
        {"type": "text", "check": lambda v: "say why" if v == "no" else None},
        "yes",
        "no",
        "opts.x: say why",
    ),
]


@pytest.mark.parametrize(("spec", "good", "bad", "says"), RULES, ids=lambda v: repr(v)[:30])
def test_each_rule_takes_the_good_and_names_the_field_and_fix_for_the_bad(spec, good, bad, says):
    assert problems(good, spec) == []
    found = problems(bad, spec)
    assert len(found) == 1 and says in found[0], found


def test_a_check_runs_only_on_a_value_of_the_right_type():
    called = []
    spec = {"type": "list", "elements": "text", "check": called.append}
    assert problems([1], spec) == ["opts.x[0]: expected a string, got int 1"] and called == []


def test_defaults_fill_missing_fields_and_text_integers_are_read():
    fields = {
        "n": {"type": "int", "default": 3},
        "sub": {"type": "dict", "default": {}, "options": {"m": {"type": "int", "default": 1}}},
        "free": {"type": "str"},
    }
    errors: list[str] = []
    assert check_fields({"n": "7"}, fields, "opts", errors) == {"n": 7, "sub": {"m": 1}, "free": None}
    assert errors == []


def test_a_mapping_of_the_wrong_type_is_named_by_type_only():
    # Its text could hold credentials.
    assert problems("password: hunter2", {"type": "dict"}) == ["opts.x: expected a mapping, got str"]


def test_an_adapter_spec_works_through_config():
    # A WLM adapter's spec, in the config schema's terms (wlm/slurm.py).
    spec = adapter("slurm").OPTION_SPEC
    assert validated({"memory_reserve_mb": "512"}, spec)["memory_reserve_mb"] == 512
    with pytest.raises(ConfigError) as err:
        validated({"memory_reserve_mb": "x", "munge_key_file": "key", "conf_server": 1}, spec)
    assert sorted(err.value.errors) == [
        "conf_server: expected a string, got int 1",
        "memory_reserve_mb: expected an integer, got 'x'; write digits only, e.g. 0",
        "munge_key_file: 'key' is not an absolute path; give one such as /etc/munge/munge.key",
    ]


# --- any input -------------------------------------------------------------------

# One field of every type, nested, so that any value can be tried on each.
SPEC = {
    "n": {"type": "int", "min": 0, "max": 10},
    "f": {"type": "number", "above": 0},
    "b": {"type": "bool"},
    "name": {"type": "name"},
    "t": {"type": "text", "pattern": re.compile("[a-z]+"), "what": "letters"},
    "p": {"type": "path", "default": "/a"},
    "c": {"type": "str", "choices": ["x", "y"]},
    "l": {"type": "list", "elements": {"type": "int"}, "if_empty": "leave it out"},
    "d": {"type": "dict", "options": {"k": {"type": "text", "required": True}}},
    "m": {"type": "dict", "keys": {"type": "name"}, "values": {"type": "path", "directory": True}},
    "free": {"type": "dict"},
    "hooked": {"type": "text", "check": lambda v: None if v.islower() else "write it in lower case"},
}
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=5)
    | st.sampled_from([b"", 1j, object(), ..., frozenset({1})])
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3),
    max_leaves=8,
)
# A good value per field, to show that the one bad field is the one named.
GOOD = {
    "n": 1,
    "f": 0.5,
    "b": True,
    "name": "a",
    "t": "ab",
    "p": "/a/b",
    "c": "x",
    "l": [1],
    "d": {"k": "v"},
    "m": {"home": "/home"},
    "free": {},
    "hooked": "ok",
}


@fuzz
@given(data=st.dictionaries(st.sampled_from([*SPEC, "unknown", "Key with space"]) | st.text(max_size=8), anything))
def test_any_input_gives_problems_that_name_their_field_and_no_exception(data):
    errors: list[str] = []
    check_fields(data, SPEC, "opts", errors)  # raises nothing, whatever data holds
    for error in errors:
        assert isinstance(error, str) and error.startswith("opts") and len(error) < 1000, error
    for key in data:
        if key not in SPEC:
            # A key that is not a plain name is shown cut, as every echoed value is.
            assert any(e.startswith(f"{join('opts', key)}: unknown field") for e in errors), errors


@fuzz
@given(field=st.sampled_from(sorted(SPEC)), value=anything)
def test_a_value_the_field_refuses_is_named_with_its_path(field, value):
    errors: list[str] = []
    check_fields({**GOOD, field: value}, SPEC, "opts", errors)
    # Only the field under test can be wrong, and if it is, the message says where.
    assert all(e.startswith(f"opts.{field}") for e in errors), errors
    if value is not None and type(value) not in (dict, list, str, int, float, bool):
        assert errors, value  # not plain data: refused by every field


@fuzz
@given(value=anything)
def test_wrong_types_never_pass(value):
    for field, spec in SPEC.items():
        errors: list[str] = []
        check(value, spec, field, errors)
        kind = spec["type"]
        expected = {"int": int, "number": (int, float), "bool": bool, "list": list, "dict": dict}.get(kind, str)
        if kind == "int" and isinstance(value, str):
            continue  # digits given as text are read as the integer
        if not isinstance(value, expected) or (kind in ("int", "number") and isinstance(value, bool)):
            assert errors and errors[0].startswith(field), (field, value, errors)


# --- the three callers -------------------------------------------------------------

UNKNOWN = re.compile(r"^(?P<path>[^:]+): unknown field; known fields here are: [a-z_, ]+$")
NOT_A_LIST = re.compile(r"^(?P<path>[^:]+): expected a list, got 'a'$")
RESOURCES = [{"name": "small", "flavor": "m1", "image": "img", "cores": 2, "memory_mb": 2048}]


def config_errors(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse({"cluster": "demo", "resources": RESOURCES, **data})
    return err.value.errors


def cloud_errors(provider, options: dict) -> list[str]:
    """The one problem with options (a provider joins several with '; ')."""
    with pytest.raises(CloudError) as err:
        provider("demo", options)
    assert err.value.kind == "config"
    return [str(err.value)]


@pytest.mark.parametrize(
    ("errors", "path"),
    [
        (lambda: config_errors({"timers": {"idle": 5}}), "timers.idle"),
        (lambda: cloud_errors(LocalProvider, {"sockt": "x"}), "cloud.options.sockt"),
        (lambda: cloud_errors(OpenStackProvider, {"flavour": "x"}), "cloud.options.flavour"),
    ],
    ids=["config", "local", "openstack"],
)
def test_the_three_callers_word_an_unknown_field_alike(errors, path):
    [message] = errors()
    assert UNKNOWN.match(message) and UNKNOWN.match(message)["path"] == path, message


@pytest.mark.parametrize(
    ("errors", "path"),
    [
        (lambda: config_errors({"wlm": {"command_prefix": "a"}}), "wlm.command_prefix"),
        (lambda: cloud_errors(LocalProvider, {"cap_add": "a"}), "cloud.options.cap_add"),
        (lambda: cloud_errors(OpenStackProvider, {"security_groups": "a"}), "cloud.options.security_groups"),
    ],
    ids=["config", "local", "openstack"],
)
def test_the_three_callers_word_a_wrong_type_alike(errors, path):
    [message] = errors()
    assert NOT_A_LIST.match(message) and NOT_A_LIST.match(message)["path"] == path, message
