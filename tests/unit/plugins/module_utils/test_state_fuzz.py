"""Fuzzing the state store (hypothesis): loading never raises, keeps every
readable part exactly, reads controls strictly (an unreadable one acts on
less), and the admin's control changes work whatever the file holds.

DCAAS_FUZZ_EXAMPLES=5000 runs more examples than CI's.
"""

from __future__ import annotations

import json
import math
import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Backoff, Controls, Timers
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore, change_controls

fuzz = settings(
    max_examples=int(os.environ.get("DCAAS_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
seconds = st.floats(-(2.0**53), 2.0**53) | st.integers(-(2**53), 2**53)  # floats() here excludes NaN and inf
bad_seconds = st.sampled_from([float("nan"), float("inf"), -float("inf"), 2**53 + 1, 10**400, True, "5", None, [1]])
names = st.text(max_size=12) | st.sampled_from(["n1", "\x00", "x" * 300, "\u2028"])
backoffs = st.fixed_dictionaries(
    {"until": seconds, "failures": st.integers(0, 1000)}, optional={"last_error": st.text(max_size=10)}
)
bad_backoffs = (
    anything
    | backoffs.map(lambda b: {**b, "failures": -1})
    | backoffs.map(lambda b: {**b, "failures": 1001})
    | backoffs.map(lambda b: {**b, "failures": True})
    | backoffs.map(lambda b: {**b, "until": "1"})
    | backoffs.map(lambda b: {**b, "last_error": 5})
)


def section(good, bad):
    return st.dictionaries(names, good | bad, max_size=4) | anything


timers_like = st.fixed_dictionaries(
    {},
    optional={
        "idle_since": section(seconds, bad_seconds),
        "down_since": section(seconds, bad_seconds),
        "last_submit": section(seconds, bad_seconds),
        "backoff": section(backoffs, bad_backoffs),
    },
)
name_lists = st.lists(st.text(max_size=8) | anything, max_size=4) | anything
controls_like = st.fixed_dictionaries(
    {},
    optional={
        "auto": st.booleans() | anything,
        "frozen": st.booleans() | anything,
        "drained_resources": name_lists,
        "held_nodes": name_lists,
    },
)
state_like = st.fixed_dictionaries(
    {}, optional={"version": anything, "timers": timers_like | anything, "controls": controls_like | anything}
)
contents = (
    st.binary(max_size=100)
    | st.integers(1, 50_000).map(lambda n: b"[" * n + b"]" * n)
    | anything.map(lambda v: json.dumps(v).encode())
    | state_like.map(lambda v: json.dumps(v).encode())
)


def is_seconds(value) -> bool:
    return type(value) in (int, float) and abs(value) <= 2**53 and math.isfinite(value)


def is_backoff(value) -> bool:
    return (
        isinstance(value, dict)
        and is_seconds(value.get("until"))
        and isinstance(value.get("failures"), int)
        and not isinstance(value.get("failures"), bool)
        and 0 <= value["failures"] <= 1000
        and isinstance(value.get("last_error", ""), str)
    )


def is_key(key) -> bool:
    return len(key) <= 255


def expected_timers(data) -> Timers:
    """Every readable entry, exactly; nothing else."""
    if not isinstance(data, dict):
        return Timers()

    def entries(name, readable, build):
        got = data.get(name)
        if not isinstance(got, dict):
            return {}
        return {k: build(v) for k, v in got.items() if is_key(k) and readable(v)}

    return Timers(
        idle_since=entries("idle_since", is_seconds, float),
        down_since=entries("down_since", is_seconds, float),
        last_submit=entries("last_submit", is_seconds, float),
        backoff=entries(
            "backoff", is_backoff, lambda v: Backoff(float(v["until"]), v["failures"], v.get("last_error", ""))
        ),
    )


def expected_controls(data) -> Controls:
    """Strict: true/false and lists of names only; what cannot be read acts on less."""
    if data is None:
        return Controls()
    if not isinstance(data, dict):
        return Controls(auto=False, frozen=True)
    auto, frozen = data.get("auto", True), data.get("frozen", False)
    lists = {key: data.get(key, []) for key in ("drained_resources", "held_nodes")}
    return Controls(
        auto=auto if isinstance(auto, bool) else False,
        frozen=(frozen if isinstance(frozen, bool) else True) or not all(isinstance(v, list) for v in lists.values()),
        **{
            key: frozenset(n for n in value if isinstance(n, str)) if isinstance(value, list) else frozenset()
            for key, value in lists.items()
        },
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> StateStore:
    return StateStore(str(tmp_path_factory.mktemp("state") / "state.json"))


def write(store: StateStore, content: bytes) -> None:
    with open(store.path, "wb") as fh:
        fh.write(content)


@fuzz
@given(contents)
def test_load_never_raises_and_keeps_exactly_what_it_can_read(store, content):
    write(store, content)
    timers, controls, warnings = store.load()
    assert all(isinstance(w, str) and len(w) < 500 for w in warnings)
    try:
        data = json.loads(content.decode("utf-8"))
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        assert (timers, controls) == (Timers(), Controls(auto=False, frozen=True)) and len(warnings) == 1
        return
    assert timers == expected_timers(data.get("timers"))
    assert controls == expected_controls(data.get("controls"))


node_names = st.text(max_size=20)
clocks = st.dictionaries(node_names, st.floats(-(2.0**53), 2.0**53), max_size=3)
valid_timers = st.builds(
    Timers,
    idle_since=clocks,
    down_since=clocks,
    last_submit=clocks,
    backoff=st.dictionaries(
        node_names, st.builds(Backoff, st.floats(0, 2.0**53), st.integers(0, 1000), st.text(max_size=10)), max_size=3
    ),
)
valid_controls = st.builds(
    Controls,
    auto=st.booleans(),
    frozen=st.booleans(),
    drained_resources=st.frozensets(st.text(max_size=8), max_size=3),
    held_nodes=st.frozensets(st.text(max_size=8), max_size=3),
)


@fuzz
@given(
    valid_timers,
    valid_controls,
    st.fixed_dictionaries(
        {}, optional={"idle_since": bad_seconds, "backoff": bad_backoffs.filter(lambda v: not is_backoff(v))}
    ),
)
def test_saved_state_reads_back_exactly_beside_unreadable_entries(store, timers, controls, garbage):
    payload = {"version": 1, "timers": timers.to_dict(), "controls": controls.to_dict()}
    for section_name, bad in garbage.items():
        payload["timers"][section_name]["\x00unreadable entry, long"] = bad  # longer than any valid key here
    write(store, json.dumps(payload).encode())
    read_timers, read_controls, warnings = store.load()
    assert (read_timers, read_controls) == (timers, controls)
    assert len(warnings) == len(garbage)
    store.save(read_timers, read_controls)
    assert store.load() == (timers, controls, [])


changes = st.fixed_dictionaries(
    {},
    optional={
        "auto": st.none() | st.booleans(),
        "frozen": st.none() | st.booleans(),
        **{
            key: st.lists(st.text(max_size=5), max_size=2)
            for key in ("drain_resources", "restore_resources", "hold_nodes", "unhold_nodes")
        },
    },
)


@fuzz
@given(contents, changes)
def test_change_controls_works_whatever_the_file_holds(store, content, change):
    write(store, content)
    timers, _controls, warnings = store.load()
    new, changed = change_controls(store, change)
    assert store.load() == (timers, new, [])  # a clean file, with every readable timer
    if warnings:
        assert changed and stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
