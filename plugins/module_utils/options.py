# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one option validator: the engine config, the cloud providers and the
workload-manager adapters describe their options as specs, and this checks them.

Private to the dcaas.cluster collection. Standard library only. A spec is a
mapping, in the config schema's terms:

- ``type``: ``int``, ``number``, ``bool``, ``str``, ``name``, ``text``,
  ``path``, ``list`` or ``dict`` (``str`` when left out);
- ``required``, ``default``; ``choices`` (``str``);
- ``min``, ``max``, ``above`` (exclusive) and ``unit`` (``int``, ``number``);
- ``pattern`` with ``what`` (``text``): ``what`` also says what to give;
- ``example`` (``path``; else its ``default``) and ``directory`` (a mount
  point, not a file);
- ``elements`` (``list``): a type name or a spec; ``options`` for mappings
  in it; ``if_empty``: an empty list is refused with this advice;
- ``options`` (``dict``): its fields, each a spec; or ``keys`` and
  ``values``: specs every key and every value must meet; with neither, any
  plain JSON data;
- ``check``: a function of the value, once its type is right, that returns
  what is wrong with it (or None).

Every problem is one line naming the field's full path and what would be
valid. Values are shown cut (``shown``): a huge or odd value never makes a
huge message, and a mapping of the wrong type is named by type only (its
text could hold credentials). Whatever the input, the checks only append to
the error list: they raise nothing.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterator
from typing import Any

NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,30}")
NAME_HINT = "lower-case letters, digits and '-', starting with a letter, at most 31 characters"
# C0 and C1 controls, line/paragraph separators and lone surrogates (from a
# JSON "\\ud800"): none belongs in a name, path or command argument, and a
# newline in a name would split the WLM's or the cloud's own records.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Integers may come as strings (Ansible templates render "{{ n }}" as text):
# plain decimal digits only, no sign other than '-', spaces, '_' or '+'.
INT_RE = re.compile(r"-?[0-9]{1,18}")
TEXT_MAX = 255  # cloud flavor, image, project and zone names; WLM accounts, partitions, features
PATH_MAX = 4096
SHOWN_CHARS = 60
PATH_EXAMPLE = "/etc/dcaas/file"


def shown(value: Any) -> str:
    """A short, printable, ASCII repr of value for messages: a long value is cut and its size given.

    Cheap whatever the value: it never renders more than it shows (a
    deeply nested, cyclic or alias-bombed tree costs no more than a small one).
    """
    pieces, size = [], 0
    for piece in _repr_pieces(value):
        pieces.append(piece)
        size += len(piece)
        if size > SHOWN_CHARS:
            break
    text = "".join(pieces)
    if size <= SHOWN_CHARS:
        return text
    if isinstance(value, str):
        note = f"{len(value)} characters"
    elif isinstance(value, bytes):
        note = f"{len(value)} bytes"
    elif isinstance(value, (dict, list, tuple, set, frozenset)):
        note = f"{len(value)} {'entry' if len(value) == 1 else 'entries'}"
    else:
        note = "cut"
    return f"{text[:SHOWN_CHARS]}... ({note})"


def _repr_pieces(value: Any) -> Iterator[str]:
    if isinstance(value, (str, bytes)):
        yield ascii(value[: SHOWN_CHARS + 1])
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        yield repr(value)
    elif isinstance(value, int):
        # repr() of a huge int is slow, and refused past 4300 digits.
        if value.bit_length() <= 190:
            yield repr(int(value))
        else:
            yield f"<an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits>"
    elif isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ", " if i else ""
            yield from _repr_pieces(key)
            yield ": "
            yield from _repr_pieces(item)
        yield "}"
    elif isinstance(value, (list, tuple, set, frozenset)):
        yield "[" if isinstance(value, list) else "("
        for i, item in enumerate(value):
            yield ", " if i else ""
            yield from _repr_pieces(item)
        yield "]" if isinstance(value, list) else ")"
    elif isinstance(value, (datetime.date, datetime.time)):
        yield value.isoformat()
    else:
        yield f"<{type(value).__name__}>"


def got(value: Any) -> str:
    """What a value of the wrong type is, for "expected X, got ..."."""
    return shown(value) if isinstance(value, str) else f"{type(value).__name__} {shown(value)}"


def join(path: str, key: str | int) -> str:
    """path extended by a field name or list index; stays short however deep the data."""
    if path.endswith("..."):
        return path
    if len(path) > 160:
        return path + "..."
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,39}", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{shown(key)}]"


def text_problem(value: Any, limit: int, what: str) -> str | None:
    """What is wrong with value as a name, path or argument, or None."""
    if not isinstance(value, str):
        return f"expected a string, got {got(value)}"
    if not value:
        return f"must not be empty; give {what}"
    bad = CONTROL_RE.search(value)
    if bad:
        return f"{shown(value)} holds a control character ({bad.group()!a} at {bad.start()}); remove it"
    if len(value) > limit:
        return f"{shown(value)} is longer than {limit} characters"
    return None


def path_problem(value: Any, example: str, directory: bool = False) -> str | None:
    problem = text_problem(value, PATH_MAX, f"an absolute path such as {example}")
    if problem:
        return problem
    if not value.startswith("/"):
        return f"{shown(value)} is not an absolute path; give one such as {example}"
    if not directory and (value.endswith("/") or value.rsplit("/", 1)[1] in (".", "..")):
        return f"{shown(value)} names a directory; give a file in it, such as {example}"
    return None


def data_problem(value: Any, path: str) -> str | None:
    """What keeps value from being plain JSON data, or None. The caller bounds its depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}: key {got(key)} is not a string; mapping keys must be strings"
            problem = data_problem(item, join(path, key))
            if problem:
                return problem
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problem = data_problem(item, join(path, i))
            if problem:
                return problem
    elif isinstance(value, str):
        if re.search("[\ud800-\udfff]", value):
            return f"{path}: {shown(value)} is not valid Unicode text (a lone surrogate)"
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            return f"{path}: {shown(value)} is too large; integers here fit in 64 bits"
    elif isinstance(value, float):
        if not math.isfinite(value):
            return f"{path}: {value} is not a finite number (JSON has no NaN or infinity)"
    else:
        kind = type(value).__name__
        return f"{path}: a {kind} is not plain data; use strings, numbers, booleans, null, lists and mappings"
    return None


def _number_problem(value: Any, spec: dict) -> str | None:
    """Bounds of an int or number already of the right type."""
    unit = spec.get("unit", "")
    if "min" in spec and value < spec["min"]:
        return f"must be at least {spec['min']}, got {shown(value)}"
    if "above" in spec and not value > spec["above"]:
        return f"must be more than {spec['above']}{unit}, got {shown(value)}"
    if "max" in spec and value > spec["max"]:
        return f"must be at most {spec['max']}{unit}, got {shown(value)}"
    return None


def check(value: Any, spec: dict, path: str, errors: list[str]) -> Any:
    """value checked against spec; problems are appended to errors as "path: what is wrong; the fix".

    Returns value as the engine reads it (integers given as text converted,
    fields of a mapping with options defaulted).
    """
    kind = spec.get("type", "str")
    problem = None
    known_errors = len(errors)
    if kind == "int":
        if isinstance(value, str) and INT_RE.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            problem = f"expected an integer, got {got(value)}; write digits only, e.g. {spec.get('default', 1)}"
        else:
            problem = _number_problem(value, spec)
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problem = f"expected a number, got {got(value)}; e.g. {spec.get('default', 1)}"
        else:
            problem = _number_problem(value, spec)
    elif kind == "bool":
        if not isinstance(value, bool):
            problem = f"expected true or false, got {got(value)}"
    elif kind == "name":
        if not isinstance(value, str):
            problem = f"expected a string, got {got(value)}"
        elif not NAME_RE.fullmatch(value):
            problem = f"{shown(value)} is not a valid name; use {NAME_HINT}"
    elif kind == "text":
        what = spec.get("what", "a value, or leave it out")
        problem = text_problem(value, TEXT_MAX, what)
        if not problem and "pattern" in spec and not spec["pattern"].fullmatch(value):
            problem = f"{shown(value)} is not valid here; give {what}"
    elif kind == "path":
        problem = path_problem(
            value, spec.get("example", spec.get("default", PATH_EXAMPLE)), spec.get("directory", False)
        )
    elif kind == "str":
        if not isinstance(value, str):
            problem = f"expected a string, got {got(value)}"
        elif "choices" in spec and value not in spec["choices"]:
            problem = f"{shown(value)} is not one of {', '.join(spec['choices'])}"
    elif kind == "list":
        if not isinstance(value, list):
            problem = f"expected a list, got {got(value)}"
        elif not value and "if_empty" in spec:
            problem = f"must not be empty; {spec['if_empty']}"
        else:
            elem = spec["elements"]
            if not isinstance(elem, dict):
                elem = {"type": elem, "options": spec.get("options"), "what": "a value, or remove the entry"}
            value = [check(v, elem, join(path, i), errors) for i, v in enumerate(value)]
    elif not isinstance(value, dict):
        problem = f"expected a mapping, got {type(value).__name__}"  # its text could hold credentials
    elif spec.get("options"):
        value = check_fields(value, spec["options"], path, errors)
    elif "keys" in spec or "values" in spec:
        value = _check_entries(value, spec, path, errors)
    elif spec.get("adapter"):
        pass  # the fields of the WLM adapter that wlm.type names: config.parse checks them
    else:
        # Free-form settings: passed on to a provider, a WLM or cloud-init as JSON.
        data_error = data_problem(value, path)
        if data_error:
            errors.append(data_error)
    if not problem and "check" in spec and len(errors) == known_errors:
        problem = spec["check"](value)
    if problem:
        errors.append(f"{path}: {problem}")
    return value


def _check_entries(data: dict, spec: dict, path: str, errors: list[str]) -> dict:
    """A mapping whose keys are names the user chooses (volumes, tenants, labels)."""
    out = {}
    for key, item in data.items():
        if not isinstance(key, str):
            errors.append(f"{path}: key {got(key)} is not a string; mapping keys must be strings")
            continue
        field = join(path, key)
        if "keys" in spec:
            key_errors: list[str] = []
            check(key, spec["keys"], field, key_errors)
            errors.extend(key_errors)
            if key_errors:
                continue
        out[key] = check(item, spec["values"], field, errors) if "values" in spec else item
    return out


def check_fields(data: dict, fields: dict, path: str, errors: list[str]) -> dict:
    """A mapping of known fields: unknown and missing ones are problems too; defaults fill the rest."""
    out = {}
    for key in data:
        if not isinstance(key, str):
            errors.append(f"{path or 'the configuration'}: key {got(key)} is not a string; field names are strings")
        elif key not in fields:
            known = ", ".join(sorted(fields))
            errors.append(f"{join(path, key)}: unknown field; known fields here are: {known}")
    for key, spec in fields.items():
        field = join(path, key)
        if key in data and data[key] is not None:
            out[key] = check(data[key], spec, field, errors)
        elif spec.get("required"):
            errors.append(f"{field}: required field is missing")
        elif "default" in spec:
            default = spec["default"]
            if spec.get("type") == "dict" and spec.get("options"):
                default = check_fields({}, spec["options"], field, errors)
            out[key] = default.copy() if isinstance(default, (dict, list)) else default
        else:
            out[key] = None
    return out
