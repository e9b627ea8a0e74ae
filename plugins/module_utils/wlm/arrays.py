# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Array-job task ranges (``1-5,7,10-20:5``), read the same way by every adapter.

Private to the dcaas.cluster collection.
"""

from __future__ import annotations

import itertools
import re
import reprlib

_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 100


def _show(value: object) -> str:
    return _SHOW.repr(value)


MAX_ARRAY_TASKS = 10_000


def array_tasks(spec: str | None) -> list[str]:
    """Task ids of a pending array record: '1-5,7,10-20:5%2' -> ['1', ..., '20'] (the %limit is dropped).

    At most MAX_ARRAY_TASKS, in the order listed. ValueError for a list
    that is not one (Slurm's and Grid Engine's task ranges share this syntax).
    """
    text = spec if isinstance(spec, str) and spec != "(null)" else None
    if not text:
        return []
    text = text.split("%", 1)[0]
    tasks: list[str] = []
    for part in text.split(","):
        # Slurm's task ids are 32-bit: ten digits, which also keeps int() cheap.
        m = re.fullmatch(r"([0-9]{1,10})(?:-([0-9]{1,10})(?::([0-9]{1,10}))?)?", part.strip())
        if not m:
            raise ValueError(f"array task list {_show(spec)}: cannot read {_show(part)}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        step = int(m.group(3)) if m.group(3) else 1
        if hi < lo or step < 1:
            raise ValueError(f"array task list {_show(spec)}: {_show(part)} is an empty range")
        room = MAX_ARRAY_TASKS - len(tasks)
        if room <= 0:
            break
        tasks.extend(str(n) for n in itertools.islice(range(lo, hi + 1, step), room))
    return tasks
