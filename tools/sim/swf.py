"""Reader of the Standard Workload Format (SWF) of the Parallel Workloads Archive.

A trace is a text file (often gzipped) of one job per line with 18
whitespace-separated numeric fields, ``-1`` meaning unknown, preceded by
header comments starting with ``;`` such as ``; MaxProcs: 100``. The field
order is fixed by the format; see FIELDS.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

FIELDS = (
    "job",
    "submit",
    "wait",
    "run",
    "procs",
    "cpu_time",
    "memory_kb",
    "req_procs",
    "req_time",
    "req_memory_kb",
    "status",
    "user",
    "group",
    "executable",
    "queue",
    "partition",
    "preceding_job",
    "think_time",
)

# "; MaxProcs: 100" -> ("MaxProcs", "100"). Continuation lines of notes have
# no key and are ignored.
_HEADER_RE = re.compile(r"^;\s*([A-Za-z][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$")


class SwfError(ValueError):
    """The trace is not valid SWF; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class SwfRecord:
    """One job line. Times are seconds; -1 marks an unknown value."""

    job: int
    submit: float
    wait: float
    run: float
    procs: int
    cpu_time: float
    memory_kb: float
    req_procs: int
    req_time: float
    req_memory_kb: float
    status: int
    user: int
    group: int
    executable: int
    queue: int
    partition: int
    preceding_job: int
    think_time: float


_FLOAT_FIELDS = frozenset({"submit", "wait", "run", "cpu_time", "memory_kb", "req_time", "req_memory_kb", "think_time"})


@dataclass(frozen=True)
class SwfTrace:
    name: str
    header: dict[str, str] = field(default_factory=dict)
    records: tuple[SwfRecord, ...] = ()

    def _header_int(self, key: str) -> int | None:
        value = self.header.get(key)
        try:
            number = int(value) if value is not None else None
        except ValueError:
            return None
        return number if number is not None and number > 0 else None

    @property
    def max_procs(self) -> int | None:
        return self._header_int("MaxProcs")

    @property
    def max_nodes(self) -> int | None:
        return self._header_int("MaxNodes")


def parse(lines: Iterable[str], name: str = "<swf>") -> SwfTrace:
    """Parse SWF text; raise SwfError naming the first bad line."""
    header: dict[str, str] = {}
    records: list[SwfRecord] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(";"):
            m = _HEADER_RE.match(line)
            # The first occurrence wins: later "Note:" lines repeat keys.
            if m and m.group(1) not in header:
                header[m.group(1)] = m.group(2)
            continue
        parts = line.split()
        if len(parts) != len(FIELDS):
            raise SwfError(f"{name}:{lineno}: expected {len(FIELDS)} fields, got {len(parts)}: {line[:80]!r}")
        values = {}
        for key, text in zip(FIELDS, parts, strict=True):
            try:
                number = float(text)
            except ValueError:
                raise SwfError(f"{name}:{lineno}: field {key!r} is not a number: {text!r}") from None
            values[key] = number if key in _FLOAT_FIELDS else int(number)
        records.append(SwfRecord(**values))
    return SwfTrace(name=name, header=header, records=tuple(records))


def read(path: str) -> SwfTrace:
    """Read a ``.swf`` or ``.swf.gz`` file."""
    name = os.path.basename(path)
    for suffix in (".gz", ".swf"):
        name = name.removesuffix(suffix)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="ascii", errors="replace") as fh:
            return parse(fh, name)
    except OSError as exc:
        raise SwfError(f"cannot read trace {path}: {exc}") from None
