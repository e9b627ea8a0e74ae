# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a worker's cloud-init user-data.

Private to the dcaas.cluster collection; its API may change without notice.
Standard library only: cloud-init reads YAML, and JSON is YAML, so the
document is ``#cloud-config`` followed by JSON with sorted keys. The same
text boots a podman "instance" of the local cloud (NoCloud seed) and an
OpenStack server (user_data), so both see byte-identical bootstrap.

The WLM adapter's ``join_config`` says how a node joins the cluster; the
admin's ``extra`` adds site parts (ssh keys, packages, early commands). Lists
are merged with the site parts first and the join steps last, so a node only
joins the workload manager once everything else is in place.

User-data carries secrets (the munge key, LDAP bind passwords): error
messages name fields and file paths, never values.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

HEADER = "#cloud-config\n"

# Characters YAML does not allow raw (or reads as line breaks inside a quoted
# scalar, which folds them away): json.dumps only escapes those below 0x20.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")

_PERMISSIONS_RE = re.compile(r"^0?[0-7]{3,4}$")
_B64_ENCODINGS = ("b64", "base64")
_TEXT_ENCODINGS = ("text/plain",)
_FILE_KEYS = ("path", "content", "permissions", "owner", "encoding", "append", "defer")


class UserDataError(ValueError):
    """The join config or the extra user-data is malformed; ``errors`` lists every problem."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid worker user-data:\n  - " + "\n  - ".join(errors))


def _type(value: Any) -> str:
    return type(value).__name__


def _strings(where: str, value: Any, errors: list[str]) -> list[str]:
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list of strings, got {_type(value)}")
        return []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            errors.append(f"{where}[{i}]: expected a string, got {_type(item)}")
    return [v for v in value if isinstance(v, str)]


def _commands(where: str, value: Any, errors: list[str]) -> list:
    """runcmd/bootcmd: each entry an argv list (no shell) or a shell string."""
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list of commands, got {_type(value)}")
        return []
    out: list = []
    for i, cmd in enumerate(value):
        if isinstance(cmd, str):
            if not cmd.strip():
                errors.append(f"{where}[{i}]: empty command")
            out.append(cmd)
        elif isinstance(cmd, list):
            if not cmd:
                errors.append(f"{where}[{i}]: empty argv list")
            bad = [j for j, arg in enumerate(cmd) if not isinstance(arg, str)]
            if bad:
                errors.append(f"{where}[{i}]: argv items must be strings; item {bad[0]} is {_type(cmd[bad[0]])}")
            out.append(list(cmd))
        else:
            errors.append(f"{where}[{i}]: expected an argv list or a shell string, got {_type(cmd)}")
    return out


def _write_files(where: str, value: Any, errors: list[str]) -> list[dict]:
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list of files, got {_type(value)}")
        return []
    out = []
    for i, entry in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{here}: expected a mapping with path and content, got {_type(entry)}")
            continue
        path = entry.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            errors.append(f"{here}.path: expected an absolute path, got {_type(path)}")
        else:
            # The path is not secret and tells the admin which file is wrong.
            here = f"{where}[{i}] ({path})"
        unknown = sorted(set(entry) - set(_FILE_KEYS))
        if unknown:
            errors.append(f"{here}: unknown field(s) {', '.join(unknown)}; known fields: {', '.join(_FILE_KEYS)}")
        content = entry.get("content", "")
        encoding = entry.get("encoding")
        if not isinstance(content, str):
            errors.append(f"{here}.content: expected a string (use encoding: b64 for binary), got {_type(content)}")
        elif encoding is None or encoding in _TEXT_ENCODINGS:
            pass
        elif encoding in _B64_ENCODINGS:
            try:
                base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                errors.append(f"{here}.content: encoding is {encoding} but the content is not valid base64")
        else:
            known = ", ".join((*_B64_ENCODINGS, *_TEXT_ENCODINGS))
            errors.append(f"{here}.encoding: {encoding!r} is not supported; use one of {known}")
        perms = entry.get("permissions")
        if perms is not None and not (isinstance(perms, str) and _PERMISSIONS_RE.match(perms)):
            # An int is refused: 600 and 0o600 would both look plausible.
            errors.append(f"{here}.permissions: expected an octal string such as '0600', got {perms!r}")
        owner = entry.get("owner")
        if owner is not None and not (isinstance(owner, str) and owner):
            errors.append(f"{here}.owner: expected 'user' or 'user:group', got {_type(owner)}")
        for flag in ("append", "defer"):
            if flag in entry and not isinstance(entry[flag], bool):
                errors.append(f"{here}.{flag}: expected true or false, got {_type(entry[flag])}")
        out.append({k: v for k, v in entry.items() if v is not None})
    return out


def _users(where: str, value: Any, errors: list[str]) -> list:
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list of users, got {_type(value)}")
        return []
    for i, user in enumerate(value):
        if isinstance(user, dict):
            if not isinstance(user.get("name"), str):
                errors.append(f"{where}[{i}].name: every user mapping needs a name")
        elif not isinstance(user, str):
            errors.append(f"{where}[{i}]: expected a user name or a mapping, got {_type(user)}")
    return list(value)


def _mounts(where: str, value: Any, errors: list[str]) -> list:
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list of fstab entries, got {_type(value)}")
        return []
    for i, entry in enumerate(value):
        if not (isinstance(entry, list) and entry and all(isinstance(f, str) for f in entry)):
            errors.append(f"{where}[{i}]: expected a list of fstab fields (strings)")
    return list(value)


def _scalar(kind: type) -> Callable[[str, Any, list[str]], Any]:
    def check(where: str, value: Any, errors: list[str]) -> Any:
        if not isinstance(value, kind):
            errors.append(f"{where}: expected {kind.__name__}, got {_type(value)}")
        return value

    return check


# Each list key is merged (site parts first, then join steps); scalar keys
# may appear on both sides only with the same value.
_LIST_KEYS: dict[str, Callable[[str, Any, list[str]], list]] = {
    "bootcmd": _commands,
    "mounts": _mounts,
    "packages": _strings,
    "runcmd": _commands,
    "ssh_authorized_keys": _strings,
    "users": _users,
    "write_files": _write_files,
}
_SCALAR_KEYS: dict[str, Callable[[str, Any, list[str]], Any]] = {
    "package_update": _scalar(bool),
    "package_upgrade": _scalar(bool),
    "timezone": _scalar(str),
}
# Duplicates in these are dropped (first one kept): listing a package or a
# key twice means nothing more than once.
_DEDUP_KEYS = ("packages", "ssh_authorized_keys")


def _validate(name: str, data: Any, errors: list[str]) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        errors.append(f"{name}: expected a mapping, got {_type(data)}")
        return {}
    out = {}
    for key, value in data.items():
        where = f"{name}.{key}"
        if key in _LIST_KEYS:
            out[key] = _LIST_KEYS[key](where, value, errors)
        elif key in _SCALAR_KEYS:
            out[key] = _SCALAR_KEYS[key](where, value, errors)
        else:
            known = ", ".join(sorted((*_LIST_KEYS, *_SCALAR_KEYS)))
            errors.append(f"{where}: not a supported cloud-config key; supported: {known}")
    return out


def _check_paths(files: list[dict], errors: list[str]) -> None:
    """Two writers of one file would leave whichever cloud-init wrote last."""
    seen: set[str] = set()
    for entry in files:
        path = entry.get("path")
        if not isinstance(path, str) or entry.get("append"):
            continue
        if path in seen:
            errors.append(f"write_files: {path} is written twice; merge the two or set append: true on the second")
        seen.add(path)


def _yaml_safe(text: str) -> str:
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def merge(join: dict, extra: dict | None = None) -> dict:
    """Validate both parts and merge them into one cloud-config mapping."""
    errors: list[str] = []
    site = _validate("extra", extra, errors)
    steps = _validate("join", join, errors)
    doc: dict[str, Any] = {}
    for key in sorted(set(site) | set(steps)):
        if key in _LIST_KEYS:
            merged = [*site.get(key, []), *steps.get(key, [])]
            if key in _DEDUP_KEYS:
                merged = list(dict.fromkeys(merged))
            doc[key] = merged
        elif key in site and key in steps and site[key] != steps[key]:
            errors.append(f"{key}: extra and join set different values; set it in one place only")
        else:
            doc[key] = steps.get(key, site.get(key))
    _check_paths(doc.get("write_files", []), errors)
    if errors:
        raise UserDataError(errors)
    return doc


def render(join: dict, extra: dict | None = None) -> str:
    """Return the ``#cloud-config`` document for a worker.

    ``join`` is the WLM adapter's ``join_config`` (``write_files`` and
    ``runcmd``); ``extra`` holds site additions. Raise UserDataError, listing
    every problem, when either is malformed.
    """
    doc = merge(join, extra)
    # ensure_ascii=False: \\u escapes of characters beyond the BMP become
    # surrogate pairs that YAML 1.1 readers (PyYAML, used by cloud-init)
    # decode as two broken characters; the unsafe rest is escaped by hand.
    body = json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False)
    return HEADER + _yaml_safe(body) + "\n"
