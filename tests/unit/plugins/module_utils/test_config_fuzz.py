"""Fuzzing the config loader (hypothesis): whatever the input, only a short
ConfigError leaves parse and load, and each field takes exactly the values
docs/engine-config.md calls valid (config_helpers.accepts).

DCAAS_FUZZ_EXAMPLES=5000 runs more examples than CI's.
"""

from __future__ import annotations

import json
import os
import string

import pytest
import yaml
from config_helpers import (
    CHOICE_FIELDS,
    COMPANIONS,
    DATA_FIELDS,
    FIELDS,
    GOOD,
    INT_FIELDS,
    NAME_FIELDS,
    PATH_FIELDS,
    TEXT_FIELDS,
    accepts,
    as_int,
    field_name,
    with_field,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.module_utils.config import (
    SCHEMA,
    Config,
    ConfigError,
    load,
    parse,
    validated,
)

fuzz = settings(
    max_examples=int(os.environ.get("DCAAS_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MESSAGE_MAX_BYTES = 4096

CONTROLS = [chr(c) for c in [*range(32), *range(0x7F, 0xA0)]] + ["\u2028", "\u2029", "\ud800"]
huge_ints = st.integers(0, 6000).map(lambda e: 10**e) | st.integers()
scalars = (
    st.none()
    | st.booleans()
    | huge_ints
    | st.floats()  # with NaN and infinities
    | st.text(max_size=20)
    | st.text(alphabet=st.sampled_from(CONTROLS + list("ab:/[]")), max_size=10)
    | st.binary(max_size=10)
)
keys = (
    st.text(max_size=10) | st.integers() | st.none() | st.booleans() | st.binary(max_size=4) | st.tuples(st.integers())
)
trees = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=25
)

# Values each kind of field should take, and values it should refuse: the
# oracle (accepts) decides; these make sure that both sides are tried often.
text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40)
with_control = st.builds(lambda a, c, b: a + c + b, st.text(max_size=5), st.sampled_from(CONTROLS), st.text(max_size=5))
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
not_plain = st.builds(
    lambda good, key, bad: {**good, key: bad} if isinstance(key, str) else {**good, key: 1},
    st.dictionaries(text, plain, max_size=3),
    keys,
    st.binary(max_size=3) | st.sampled_from([float("nan"), float("inf"), 2**64, {1, 2}, (1,), "\udc80"]),
)
segment = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/"), min_size=1)
LOOPBACK = ["127.0.0.1", "127.9.9.9", "localhost", "[::1]"]
ELSEWHERE = ["0.0.0.0", "[::]", "10.0.0.1", "head.example", "", "::1", "[127.0.0.1]", "a_b", "1.2.3"]
JUNK_INTS = ["", " 1", "1 ", "+1", "1_0", "1e3", "0x10", "\u0663", "1.0", "1" * 19]


def bounded(low: int, high: int) -> tuple:
    inside = st.integers(low, high)
    outside = st.integers(max_value=low - 1) | st.integers(min_value=high + 1)
    bad = outside | outside.map(str) | huge_ints | st.floats() | st.booleans() | st.sampled_from(JUNK_INTS)
    return inside | inside.map(str), bad


VALUES = {  # path: (good values, bad values)
    **{path: bounded(*bounds) for path, bounds in INT_FIELDS.items()},
    **{path: (st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True), text | with_control) for path in NAME_FIELDS},
    **{path: (text, with_control | st.just("") | st.text(min_size=256, max_size=300)) for path in TEXT_FIELDS},
    **{
        path: (
            st.lists(segment, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts)),
            text.map(lambda t: t.lstrip("/")) | with_control | st.sampled_from(["", "/", "/a/", "/a/..", other]),
        )
        for path, other in PATH_FIELDS.items()
    },
    "status_listen": (
        st.builds("{}:{}".format, st.sampled_from(LOOPBACK), st.integers(1, 65535)),
        st.builds("{}:{}".format, st.sampled_from(LOOPBACK + ELSEWHERE) | text, st.integers(-1, 70000) | text) | text,
    ),
    **{path: (st.dictionaries(text, plain, max_size=3), not_plain | plain) for path in DATA_FIELDS},
    **{path: (st.sampled_from(choices), text | with_control) for path, choices in CHOICE_FIELDS.items()},
}
assert sorted(VALUES) == FIELDS


def at(data: dict, path: str):
    for part in path.split("."):
        data = data[int(part)] if part.isdigit() else data[part]
    return data


def check_message(exc: ConfigError) -> None:
    assert len(str(exc).encode()) < MESSAGE_MAX_BYTES
    assert exc.errors and all(isinstance(e, str) for e in exc.errors)


@fuzz
@given(st.data())
def test_each_field_takes_exactly_its_valid_values(data):
    path = data.draw(st.sampled_from(FIELDS), label="field")
    good, bad = VALUES[path]
    value = data.draw(good | bad | trees, label="value")
    config = GOOD
    for other, companion in COMPANIONS.get(path, {}).items():
        config = with_field(other, companion, config)
    config = with_field(path, value, config)
    try:
        parse(config)
    except ConfigError as exc:
        check_message(exc)
        assert not accepts(path, value), f"refused a valid value: {exc}"
        assert any(field_name(path) in e for e in exc.errors), exc.errors
        return
    assert accepts(path, value), "accepted an invalid value"
    if value is not None:
        # The adapter's options are checked by parse, against its own spec.
        adapter = path.startswith("wlm.options.")
        read = parse(config).wlm_options[path.rsplit(".", 1)[1]] if adapter else at(validated(config, SCHEMA), path)
        assert read == (as_int(value) if path in INT_FIELDS else value)


@fuzz
@given(
    trees | st.dictionaries(keys, trees, max_size=6),
    st.sampled_from([*FIELDS, "resources", "resources.0", "timers", "wlm"]),
)
def test_parse_raises_only_short_config_errors(tree, path):
    for data in (tree, with_field(path, tree) if path != "resources.0" else {**GOOD, "resources": [tree, tree]}):
        try:
            assert isinstance(parse(data), Config)
        except ConfigError as exc:
            check_message(exc)


yamlish = st.text(
    alphabet=st.sampled_from(list(string.ascii_letters[:6] + string.digits[:3] + " -:&*[]{}!|>'\"#,?\n\t<=%@`")),
    max_size=80,
)


def as_yaml(data: dict) -> str:
    return yaml.safe_dump(data, default_flow_style=False, allow_unicode=True)


@fuzz
@given(
    st.sampled_from(["e.json", "e.yml", "e.yaml"]),
    st.binary(max_size=200) | yamlish.map(str.encode) | st.builds(lambda v: json.dumps(v).encode(), plain),
)
def test_load_raises_only_short_config_errors(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    try:
        load(str(path))
    except ConfigError as exc:
        check_message(exc)


@fuzz
@given(
    st.sampled_from(["e.json", "e.yml"]),
    st.sampled_from(FIELDS),
    st.data(),
    st.sampled_from([None, "cluster", "timers"]),
)
def test_load_reads_what_parse_reads_and_refuses_duplicate_keys(tmp_path, name, path, data, duplicate):
    config = with_field(path, data.draw(VALUES[path][0].filter(lambda v: accepts(path, v))))
    for other, companion in COMPANIONS.get(path, {}).items():
        config = with_field(other, companion, config)
    config.setdefault("timers", {})  # so that a second "timers" repeats a key
    text = json.dumps(config) if name.endswith(".json") else as_yaml(config)
    if duplicate:  # the same key again, at the top level
        text = text[:-1] + f', "{duplicate}": {{}}}}' if name.endswith(".json") else text + f"{duplicate}: {{}}\n"
    (tmp_path / name).write_text(text, encoding="utf-8")
    if duplicate:
        with pytest.raises(ConfigError, match="appears twice"):
            load(str(tmp_path / name))
    else:
        assert load(str(tmp_path / name)) == parse(config)
