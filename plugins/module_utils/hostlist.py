# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slurm host lists: ``node[01-03,07],gpu5`` <-> a list of names.

This module is private to the dcaas.cluster collection; its API may change
without notice. Standard library only.

The syntax is Slurm's: items separated by commas outside brackets; each
item is literal text with any number of bracket groups, which multiply
(``r[1-2]n[1-2]`` is four names); a bracket group holds numbers and ranges
separated by commas, and a range is zero-padded to the width of its lower
bound (``c[08-10]`` is c08, c09, c10).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable

# A name made of these can be written back into a host list unambiguously.
_NAME_RE = re.compile(r"^[^\[\],\s]+$")
# The last run of digits in a name is the part a host list compresses.
_NUMBERED_RE = re.compile(r"^(.*?)(\d+)(\D*)$")
# ASCII digits only: int() would also read other scripts' digits, and
# twenty of them are more than any host number (it also keeps int() cheap).
_RANGE_RE = re.compile(r"^([0-9]{1,20})(?:-([0-9]{1,20}))?$")
# Longer than any host name (Linux allows 64 characters, DNS 253). Refusing
# longer names also bounds the memory an expansion takes, with ``limit``.
MAX_NAME = 255

# squeue/scontrol print these for "no nodes".
_EMPTY = ("", "(null)", "None", "N/A")


class HostlistError(ValueError):
    """A host list or a host name that cannot be parsed or written."""


def _quote(text: str) -> str:
    """``text`` for a message: quoted, and cut short if long."""
    return repr(text) if len(text) <= 80 else f"{text[:80]!r}..."


def _split_top(text: str) -> list[str]:
    """Split at commas that are not inside brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise HostlistError(f"host list {_quote(text)}: nested '[' at position {i}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise HostlistError(f"host list {_quote(text)}: ']' without '[' at position {i}")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise HostlistError(f"host list {_quote(text)}: '[' is not closed")
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def _bracket_ranges(text: str, body: str) -> list[tuple[int, int, int]]:
    """The (first, last, width) ranges of one bracket group."""
    ranges = []
    for part in body.split(","):
        m = _RANGE_RE.match(part.strip())
        if not m:
            raise HostlistError(
                f"host list {_quote(text)}: {_quote(part)} in brackets is not a number or a range like 1-5"
            )
        lo, hi = m.group(1), m.group(2) or m.group(1)
        if int(hi) < int(lo):
            raise HostlistError(f"host list {_quote(text)}: range {part} runs backwards")
        ranges.append((int(lo), int(hi), len(lo)))
    return ranges


def expand(hostlist: str | None, limit: int = 100_000) -> list[str]:
    """All names in ``hostlist``, in the order written.

    ``limit`` guards against a typo such as ``n[1-100000000]`` exhausting
    memory: a longer list raises HostlistError before any name is made,
    as does a name longer than MAX_NAME. Raises nothing but HostlistError.
    """
    if hostlist is None:
        return []
    if not isinstance(hostlist, str):
        raise HostlistError(f"a host list is text, not {type(hostlist).__name__}")
    if hostlist.strip() in _EMPTY:
        return []
    names: list[str] = []
    for item in _split_top(hostlist.strip()):
        # Literal pieces and bracket groups alternate; re.split keeps the groups.
        pieces = re.split(r"\[([^\]]*)\]", item)
        groups = [_bracket_ranges(hostlist, p) for p in pieces[1::2]]
        length = sum(map(len, pieces[::2])) + sum(max(w, len(str(hi))) for g in groups for _lo, hi, w in g)
        if length > MAX_NAME:
            raise HostlistError(f"host list {_quote(hostlist)} has a name longer than {MAX_NAME} characters")
        count = math.prod(sum(hi - lo + 1 for lo, hi, _width in g) for g in groups)
        if len(names) + count > limit:
            raise HostlistError(f"host list {_quote(hostlist)} has more than {limit} names")
        choices: list[list[str]] = []
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                choices.append([piece])
            else:
                choices.append([str(n).zfill(w) for lo, hi, w in groups[i // 2] for n in range(lo, hi + 1)])
        names.extend("".join(combo) for combo in itertools.product(*choices))
    return names


def sort_key(name: str) -> tuple:
    """Natural order: ``n2`` before ``n10``; the order compress() writes names in."""
    m = _NUMBERED_RE.match(name)
    if not m:
        return (name, "", -1, "")
    prefix, digits, suffix = m.groups()
    return (prefix, suffix, int(digits), digits)


def compress(names: Iterable[str]) -> str:
    """The shortest usual host list for ``names`` (sorted naturally, duplicates dropped).

    ``expand(compress(names)) == sorted(set(names), key=sort_key)``.
    """
    unique = set()
    for name in names:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise HostlistError(f"{name!r} cannot be written into a host list (empty, blank, or has '[', ']' or ',')")
        unique.add(name)

    out: list[str] = []
    # Runs of consecutive numbers that print the same way: (first, last, width).
    group: tuple[str, str] | None = None
    runs: list[list] = []

    def flush() -> None:
        if group is None:
            return
        prefix, suffix = group
        if len(runs) == 1 and runs[0][0] == runs[0][1]:
            out.append(f"{prefix}{str(runs[0][0]).zfill(runs[0][2])}{suffix}")
            return
        ranges = [str(lo).zfill(w) if lo == hi else f"{str(lo).zfill(w)}-{str(hi).zfill(w)}" for lo, hi, w in runs]
        out.append(f"{prefix}[{','.join(ranges)}]{suffix}")

    for name in sorted(unique, key=sort_key):
        m = _NUMBERED_RE.match(name)
        if not m:
            flush()
            group, runs = None, []
            out.append(name)
            continue
        prefix, digits, suffix = m.groups()
        number = int(digits)
        if group != (prefix, suffix):
            flush()
            group, runs = (prefix, suffix), []
        last = runs[-1] if runs else None
        # A range prints every number padded to its lower bound's width, so
        # a name joins the run only if it would print exactly as it is.
        if last is not None and number == last[1] + 1 and str(number).zfill(last[2]) == digits:
            last[1] = number
        else:
            runs.append([number, number, len(digits)])
    flush()
    return ",".join(out)
