"""The state file: atomic, private, and safe to lose."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Backoff, Controls, Timers
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore, apply_changes, change_controls


def test_round_trip_and_mode(tmp_path):
    store = StateStore(str(tmp_path / "d" / "state.json"))
    timers = Timers(idle_since={"n1": 5.0}, backoff={"small": Backoff(99.0, 2, "quota")}, last_submit={"small": 3.0})
    controls = Controls(auto=False, held_nodes=frozenset({"n1"}))
    store.save(timers, controls)
    assert store.load() == (timers, controls, [])
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert os.listdir(tmp_path / "d") == ["state.json"]  # no temporary files left


def test_missing_file_is_a_fresh_start(tmp_path):
    assert StateStore(str(tmp_path / "none.json")).load() == (Timers(), Controls(), [])


SAFE = Controls(auto=False, frozen=True)  # what a store that cannot read its controls acts on


def store_with(tmp_path, content) -> StateStore:
    path = tmp_path / "state.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return StateStore(str(path))


@pytest.mark.parametrize(
    "content",
    [b"\x00garbage", b'{"timers": ', b"\xff\xfe{}", b"[" * 100_000, b"[]", b"null", b"1" + b"0" * 5000],
)
def test_an_unreadable_file_restarts_the_timers_and_acts_on_nothing(tmp_path, content):
    # It used to be a fresh start (auto on, not frozen), or a RecursionError.
    timers, controls, warnings = store_with(tmp_path, content).load()
    assert timers == Timers() and controls == SAFE
    assert len(warnings) == 1 and "unreadable" in warnings[0] and len(warnings[0]) < 500


def test_a_bad_entry_loses_that_entry_only(tmp_path):
    good = Timers(
        idle_since={"n1": 5.0, "n2": 6.0},
        down_since={"n3": 7.0},
        backoff={"a": Backoff(99.0, 2, "quota"), "b": Backoff(98.0, 1)},
        last_submit={"a": 3.0},
    ).to_dict()
    good["idle_since"]["n1"] = "x"
    good["backoff"]["a"]["failures"] = "2"
    store = store_with(tmp_path, {"timers": good, "controls": {"held_nodes": ["n2"]}})
    timers, controls, warnings = store.load()
    assert timers == Timers(
        idle_since={"n2": 6.0}, down_since={"n3": 7.0}, backoff={"b": Backoff(98.0, 1)}, last_submit={"a": 3.0}
    )
    assert controls == Controls(held_nodes=frozenset({"n2"}))
    assert any("timers.idle_since['n1']" in w for w in warnings)
    assert any("timers.backoff['a']" in w for w in warnings) and len(warnings) == 2


@pytest.mark.parametrize(
    "timers",
    [
        [1, 2],
        "x",
        {"idle_since": [1]},
        {"idle_since": "n1"},
        {"backoff": {"a": [1]}},
        {"backoff": {"a": {"until": 1}}},
        {"backoff": {"a": {"until": 1, "failures": True}}},
        {"backoff": {"a": {"until": 1, "failures": 10**9}}},
        {"backoff": {"a": {"until": "1", "failures": 1}}},
        {"backoff": {"a": {"until": 1, "failures": 1, "last_error": ["x"]}}},
        {"down_since": {"n": None}},
        {"down_since": {"n": True}},
        {"down_since": {"n": float("nan")}},
        {"down_since": {"n": float("inf")}},
        {"down_since": {"n": 10**400}},
        {"last_submit": {"n": "5"}},
    ],
)
def test_timers_of_the_wrong_type_are_dropped_with_a_warning(tmp_path, timers):
    raw = json.dumps({"timers": timers, "controls": {"frozen": True}}).encode()
    timers_read, controls, warnings = store_with(tmp_path, raw).load()
    assert timers_read == Timers() and controls == Controls(frozen=True)
    assert len(warnings) == 1 and warnings[0].startswith(f"state file {tmp_path}/state.json: timers")


@pytest.mark.parametrize(
    ("stored", "read", "warned"),
    [
        ({"frozen": "false"}, Controls(frozen=True), "controls.frozen"),  # bool("false") is True...
        ({"frozen": 0}, Controls(frozen=True), "controls.frozen"),  # ...and bool(0) thawed a frozen cluster
        ({"frozen": None}, Controls(frozen=True), "controls.frozen"),
        ({"auto": "false"}, Controls(auto=False), "controls.auto"),
        ({"auto": 1}, Controls(auto=False), "controls.auto"),
        ({"held_nodes": "n1"}, Controls(frozen=True), "controls.held_nodes"),  # was {"n", "1"}
        ({"held_nodes": {"n1": True}}, Controls(frozen=True), "controls.held_nodes"),
        ({"drained_resources": 5}, Controls(frozen=True), "controls.drained_resources"),
        ({"held_nodes": ["n1", 7, None]}, Controls(held_nodes=frozenset({"n1"})), "controls.held_nodes"),
        ("frozen", SAFE, "controls"),
        ([True], SAFE, "controls"),
        # missing: an older file; the default, no warning
        ({}, Controls(), None),
        (None, Controls(), None),
        ({"auto": False}, Controls(auto=False), None),
    ],
)
def test_controls_are_read_strictly_and_fall_back_to_acting_on_less(tmp_path, stored, read, warned):
    _timers, controls, warnings = store_with(tmp_path, {"controls": stored}).load()
    assert controls == read
    assert [w.split(": ")[1] for w in warnings] == ([warned] if warned else [])


def test_control_changes():
    c = apply_changes(Controls(), {"drain_resources": ["a", "b"], "hold_nodes": ["n1"], "frozen": True})
    assert c.drained_resources == {"a", "b"} and c.held_nodes == {"n1"} and c.frozen and c.auto
    c = apply_changes(c, {"restore_resources": ["a"], "unhold_nodes": ["n1"], "auto": False})
    assert c.drained_resources == {"b"} and not c.held_nodes and not c.auto and c.frozen


def test_change_controls_persists_and_reports_change(tmp_path):
    store = StateStore(str(tmp_path / "state.json"))
    store.save(Timers(idle_since={"n": 1.0}), Controls())
    new, changed = change_controls(store, {"hold_nodes": ["n"]})
    assert changed and store.load()[1] == new
    assert store.load()[0].idle_since == {"n": 1.0}  # timers untouched
    assert change_controls(store, {"hold_nodes": ["n"]})[1] is False
    changed = change_controls(store, {"unhold_nodes": ["n"]}, write=False)[1]
    assert changed and store.load()[1].held_nodes == {"n"}  # check mode wrote nothing


@pytest.mark.parametrize(
    "content",
    [
        b"\xff",
        b"[]",
        json.dumps({"timers": {"idle_since": ["n1"]}, "controls": {"frozen": "no", "held_nodes": ["n9"]}}).encode(),
    ],
)
def test_change_controls_works_whatever_the_file_holds_and_writes_it_clean(tmp_path, content):
    store = store_with(tmp_path, content)
    new, changed = change_controls(store, {"hold_nodes": ["n1"]}, write=False)
    with open(store.path, "rb") as fh:
        assert changed and fh.read() == content  # check mode: reported, not written
    new, changed = change_controls(store, {"hold_nodes": ["n1"]})
    assert changed and "n1" in new.held_nodes and new.frozen  # the safe value stays until thawed
    assert store.load() == (Timers(), new, [])  # clean now
    new, changed = change_controls(store, {"frozen": False})
    assert changed and not new.frozen and store.load()[2] == []


def test_change_controls_cleans_a_file_even_when_the_controls_stay(tmp_path):
    store = store_with(tmp_path, {"timers": {"idle_since": {"n1": 1.0, "n2": "x"}}})
    new, changed = change_controls(store, {})
    assert changed and new == Controls()
    assert store.load() == (Timers(idle_since={"n1": 1.0}), Controls(), [])
    assert change_controls(store, {}) == (Controls(), False)
