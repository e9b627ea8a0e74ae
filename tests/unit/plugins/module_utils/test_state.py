"""The state file: atomic, private, and safe to lose."""

from __future__ import annotations

import os
import stat

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


def test_corrupt_file_is_a_fresh_start_with_a_warning(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"timers": {"idle_since": {"n1": "x"}}}')
    timers, controls, warnings = StateStore(str(path)).load()
    assert timers == Timers() and controls == Controls()
    assert warnings and "malformed" in warnings[0]
    path.write_text("\x00garbage")
    assert "unreadable" in StateStore(str(path)).load()[2][0]


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
