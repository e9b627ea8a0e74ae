# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's small state file: timers and the admin's controls.

Private to the dcaas.cluster collection. Written atomically (temporary file,
fsync, rename) with mode 0600. Losing the timers is safe: idle clocks
restart and back-offs are forgotten. Reading never raises: a part of the
wrong type is dropped alone, with a warning, and controls that cannot be read
take their safe values (Controls.from_dict). A lock file serialises reconcile
passes so the daemon and an ad-hoc ``dcaas.cluster.scale`` run never act at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Controls, Timers

VERSION = 1
# The engine writes a few KiB per hundred nodes; anything this big is not its file.
MAX_BYTES = 16 * 1024 * 1024


class StateError(Exception):
    pass


class StateStore:
    def __init__(self, path: str):
        self.path = path

    def load(self) -> tuple[Timers, Controls, list[str]]:
        """Return (timers, controls, warnings), whatever the file holds. A missing file is a fresh start."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return Timers(), Controls(), []
        except OSError as exc:
            return self._unreadable(exc.strerror or type(exc).__name__)
        if len(raw) > MAX_BYTES:
            return self._unreadable(f"larger than {MAX_BYTES} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deeply
            return self._unreadable(str(exc))
        if not isinstance(data, dict):
            return self._unreadable(f"a JSON {type(data).__name__}, not a mapping")
        warnings: list[str] = []
        timers = Timers.from_dict(data.get("timers"), warnings)
        controls = Controls.from_dict(data.get("controls"), warnings)
        return timers, controls, [f"state file {self.path}: {w}" for w in warnings]

    def _unreadable(self, why: str) -> tuple[Timers, Controls, list[str]]:
        # Never act on what cannot be read: the admin's controls fall back
        # to what acts on nothing until an admin sets them again.
        return (
            Timers(),
            Controls(auto=False, frozen=True),
            [f"state file {self.path} unreadable ({why}): timers restart; auto off and frozen until set again"],
        )

    def save(self, timers: Timers, controls: Controls) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        payload = {"version": VERSION, "timers": timers.to_dict(), "controls": controls.to_dict()}
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def apply_changes(controls: Controls, changes: dict) -> Controls:
    """Apply admin control changes (auto, frozen, drain/restore resources, hold/unhold nodes)."""
    drained = (set(controls.drained_resources) | set(changes.get("drain_resources") or ())) - set(
        changes.get("restore_resources") or ()
    )
    held = (set(controls.held_nodes) | set(changes.get("hold_nodes") or ())) - set(changes.get("unhold_nodes") or ())
    return Controls(
        auto=controls.auto if changes.get("auto") is None else bool(changes["auto"]),
        frozen=controls.frozen if changes.get("frozen") is None else bool(changes["frozen"]),
        drained_resources=frozenset(drained),
        held_nodes=frozenset(held),
    )


def change_controls(store: StateStore, changes: dict, write: bool = True) -> tuple[Controls, bool]:
    """Change the controls in the state file; return (new controls, whether the file changes).

    Works whatever the file holds: one with unreadable parts is rewritten
    clean, keeping what was readable and the safe values that replaced the rest.
    """
    with store.lock():
        timers, controls, warnings = store.load()
        new = apply_changes(controls, changes)
        changed = new != controls or bool(warnings)
        if changed and write:
            store.save(timers, new)
        return new, changed
