"""Shared by the config tests: a good config, one field changed, and the rules each field follows.

The rules are written here independently of config.py, from docs/engine-config.md,
so that the tests check the loader against the documentation, not against itself.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re

GOOD = {
    "cluster": "demo",
    "resources": [{"name": "small", "flavor": "m1.small", "image": "worker", "cores": 2, "memory_mb": 2048}],
}

INT_FIELDS = {  # path: (min, max)
    "timers.idle_timeout": (0, 604800),
    "timers.boot_timeout": (1, 604800),
    "timers.down_timeout": (0, 604800),
    "timers.backoff_initial": (1, 604800),
    "timers.backoff_max": (1, 604800),
    "timers.interval": (1, 86400),
    "timers.watch": (0, 86400),
    "timers.prewarm": (0, 86400),
    "timers.quiet": (0, 604800),
    "limits.max_launches_per_cycle": (1, 1000),
    "resources.0.cores": (1, 4096),
    "resources.0.memory_mb": (1, 64 * 1024 * 1024),
    "resources.0.min": (0, 10000),
    "resources.0.max": (0, 10000),
    "resources.0.spare": (0, 10000),
    "resources.0.priority": (-(10**6), 10**6),
    "wlm.options.memory_reserve_mb": (0, 1024 * 1024),  # the Slurm adapter's
}
NAME_FIELDS = ["cluster", "resources.0.name"]
TEXT_FIELDS = [  # non-empty, at most 255 characters, no control character
    "resources.0.flavor",
    "resources.0.image",
    "resources.0.zone",
    "resources.0.tenant",
    "resources.0.accounts.0",
    "resources.0.partitions.0",
    "resources.0.features.0",
    "wlm.command_prefix.0",
    "wlm.options.conf_server",
]
# path: a file it must not be (none for the munge key: "" is refused anyway)
PATH_FIELDS = {
    "state_file": "/var/lib/dcaas/status.token",
    "status_token_file": "/var/lib/dcaas/state.json",
    "wlm.options.munge_key_file": "",
}
# wlm.options takes the adapter's options only (the fields above).
DATA_FIELDS = ["cloud.options", "resources.0.options", "worker_user_data"]
CHOICE_FIELDS = {
    "wlm.type": ["slurm"],  # the adapters of this version
    "wlm.nodes": ["dynamic", "cloud"],
    "cloud.provider": ["local", "openstack"],
    "status_auth": ["token", "none"],
}
REQUIRED = {"cluster", "resources.0.name", "resources.0.flavor", "resources.0.image"}
# Fields set beside the one under test so that a good value is not refused
# for its relation to another field (min <= max, backoff_initial <= backoff_max).
COMPANIONS = {
    "resources.0.min": {"resources.0.max": 10000},
    "timers.backoff_initial": {"timers.backoff_max": 604800},
    "timers.backoff_max": {"timers.backoff_initial": 1},
    "status_listen": {"status_auth": "none"},  # so only loopback hosts are good
}


def with_field(path: str, value, data: dict | None = None) -> dict:
    """A copy of data (GOOD) with the field at a dotted path ("resources.0.accounts.0") set to value."""
    data = json.loads(json.dumps(GOOD if data is None else data))
    parts = path.split(".")
    node = data
    for part, after in zip(parts, parts[1:]):
        node = node[int(part)] if part.isdigit() else node.setdefault(part, [] if after.isdigit() else {})
    if parts[-1].isdigit():
        node[int(parts[-1]) :] = [value]
    else:
        node[parts[-1]] = value
    return data


def field_name(path: str) -> str:
    """How messages write a path: resources[0].flavor."""
    return re.sub(r"\.(\d+)", r"[\1]", path)


def names_field(error: str, path: str) -> bool:
    return re.match(re.escape(field_name(path)) + "[:.[]", error) is not None


def has_control(text: str) -> bool:
    return any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" or 0xD800 <= ord(c) <= 0xDFFF for c in text)


def as_int(value):
    """The integer a field reads from value (numbers, or decimal digit strings), else None."""
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def is_text(value, limit: int = 255) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and not has_control(value)


def is_plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_plain(v) for v in value)
    if isinstance(value, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, float) and math.isfinite(value)


def is_loopback_listen(value) -> bool:
    """host:port on a loopback host, IPv6 in brackets (with status_auth: none)."""
    if not is_text(value):
        return False
    bracketed = re.fullmatch(r"\[(.*)\]:([0-9]{1,5})", value)
    plain = re.fullmatch(r"([^:\[\]]*):([0-9]{1,5})", value)
    if not (bracketed or plain) or not 1 <= int((bracketed or plain).group(2)) <= 65535:
        return False
    host = (bracketed or plain).group(1)
    try:
        address = ipaddress.IPv6Address(host) if bracketed else ipaddress.IPv4Address(host)
    except ValueError:
        return bool(plain) and host.lower() == "localhost"
    return address.is_loopback


def accepts(path: str, value) -> bool:
    """Whether the documented rules accept value at path (its companions set)."""
    if value is None:
        return path not in REQUIRED and not path.endswith(".0")  # null: "not given"
    if path in INT_FIELDS:
        low, high = INT_FIELDS[path]
        number = as_int(value)
        return number is not None and low <= number <= high
    if path in NAME_FIELDS:
        return isinstance(value, str) and re.fullmatch(r"[a-z][a-z0-9-]{0,30}", value) is not None
    if path in TEXT_FIELDS:
        return is_text(value)
    if path in PATH_FIELDS:
        return (
            is_text(value, 4096)
            and value.startswith("/")
            and not value.endswith("/")
            and value.rsplit("/", 1)[1] not in (".", "..")
            and value != PATH_FIELDS[path]
        )
    if path == "status_listen":
        return is_loopback_listen(value)
    if path in DATA_FIELDS:
        return isinstance(value, dict) and is_plain(value)
    if path in CHOICE_FIELDS:
        return isinstance(value, str) and value in CHOICE_FIELDS[path]
    raise AssertionError(f"no rule for {path}")


FIELDS = sorted([*INT_FIELDS, *NAME_FIELDS, *TEXT_FIELDS, *PATH_FIELDS, "status_listen", *DATA_FIELDS, *CHOICE_FIELDS])
