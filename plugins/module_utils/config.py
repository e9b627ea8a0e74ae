# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine configuration: schema, validation and loading.

Private to the dcaas.cluster collection. Standard library only (PyYAML is
imported lazily for .yml files). Every error names the field with its full
path and says what would be valid, and validation happens before anything
acts, so a bad config never changes the cluster.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Resource

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
NAME_HINT = "lower-case letters, digits and '-', starting with a letter, at most 31 characters"

RESOURCE_SPEC: dict[str, dict] = {
    "name": {"type": "name", "required": True},
    "flavor": {"type": "str", "required": True},
    "image": {"type": "str", "required": True},
    "cores": {"type": "int", "min": 1},
    "memory_mb": {"type": "int", "min": 1},
    "min": {"type": "int", "default": 0, "min": 0},
    "max": {"type": "int", "default": 10, "min": 0},
    # Cloud nodes: idle nodes kept powered up, ready for the next job, while
    # jobs for the resource keep coming (timers.quiet).
    "spare": {"type": "int", "default": 1, "min": 0},
    "priority": {"type": "int", "default": 100},
    "zone": {"type": "str"},
    "tenant": {"type": "str"},
    "accounts": {"type": "list", "elements": "str", "default": []},
    "partitions": {"type": "list", "elements": "str", "default": []},
    "features": {"type": "list", "elements": "str", "default": []},
    "options": {"type": "dict", "default": {}},
}

SCHEMA: dict[str, dict] = {
    "cluster": {"type": "name", "required": True},
    "wlm": {
        "type": "dict",
        "default": {},
        "options": {
            "type": {"type": "str", "default": "slurm", "choices": ["slurm", "gridengine", "torque"]},
            "command_prefix": {"type": "list", "elements": "str", "default": []},
            # dynamic: workers join the WLM when they boot and leave when
            # deleted. cloud: every resource's max nodes are known to the WLM,
            # off until needed (Slurm State=CLOUD): the WLM places and reserves
            # jobs on them and the engine powers them up and down.
            "nodes": {"type": "str", "default": "dynamic", "choices": ["dynamic", "cloud"]},
            "options": {"type": "dict", "default": {}},
        },
    },
    "cloud": {
        "type": "dict",
        "default": {},
        "options": {
            "provider": {"type": "str", "default": "local", "choices": ["local", "openstack"]},
            "options": {"type": "dict", "default": {}},
        },
    },
    "resources": {"type": "list", "elements": "dict", "required": True, "options": RESOURCE_SPEC},
    "timers": {
        "type": "dict",
        "default": {},
        "options": {
            "idle_timeout": {"type": "int", "default": 600, "min": 0},
            "boot_timeout": {"type": "int", "default": 600, "min": 1},
            "down_timeout": {"type": "int", "default": 300, "min": 0},
            "backoff_initial": {"type": "int", "default": 60, "min": 1},
            "backoff_max": {"type": "int", "default": 1800, "min": 1},
            "interval": {"type": "int", "default": 30, "min": 1},
            # Between passes, look at the pending job ids this often and pass
            # at once when a new one appears; 0 turns the watch off.
            "watch": {"type": "int", "default": 5, "min": 0},
            # Cloud nodes: power up the nodes the WLM plans for a job this
            # long before its planned start (about one boot); 0: at the start.
            "prewarm": {"type": "int", "default": 60, "min": 0},
            # Cloud nodes: no job for a resource submitted this long: its idle
            # nodes go after `prewarm` seconds (not idle_timeout) and it keeps
            # no spare; 0: off (no spare either).
            "quiet": {"type": "int", "default": 1200, "min": 0},
        },
    },
    "limits": {
        "type": "dict",
        "default": {},
        "options": {"max_launches_per_cycle": {"type": "int", "default": 10, "min": 1}},
    },
    # Extra cloud-config for every worker (site ssh keys, packages, users),
    # merged with what the WLM adapter needs to join.
    "worker_user_data": {"type": "dict", "default": {}},
    "state_file": {"type": "str", "default": "/var/lib/dcaas/state.json"},
    "status_listen": {"type": "str", "default": "127.0.0.1:8655"},
    # token: every status request carries the token kept in status_token_file
    # (created by the daemon, mode 0600); none: only on a loopback address.
    "status_auth": {"type": "str", "default": "token", "choices": ["token", "none"]},
    "status_token_file": {"type": "str", "default": "/var/lib/dcaas/status.token"},
}


class ConfigError(ValueError):
    """The configuration is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid dcaas engine configuration:\n  - " + "\n  - ".join(errors))


def _check(value: Any, spec: dict, path: str, errors: list[str]) -> Any:
    kind = spec.get("type", "str")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            errors.append(f"{path}: expected an integer, got {type(value).__name__} {value!r}")
            return value
        try:
            value = int(value)
        except ValueError:
            errors.append(f"{path}: expected an integer, got {value!r}")
            return value
        if "min" in spec and value < spec["min"]:
            errors.append(f"{path}: must be at least {spec['min']}, got {value}")
    elif kind in ("str", "name"):
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__} {value!r}")
            return value
        if kind == "name" and not NAME_RE.match(value):
            errors.append(f"{path}: {value!r} is not a valid name; use {NAME_HINT}")
        if "choices" in spec and value not in spec["choices"]:
            errors.append(f"{path}: {value!r} is not one of {', '.join(spec['choices'])}")
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__} {value!r}")
            return value
        elem = {"type": spec.get("elements", "str"), "options": spec.get("options")}
        value = [_check(v, elem, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    elif kind == "dict":
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
            return value
        if spec.get("options"):
            value = _check_options(value, spec["options"], path, errors)
    return value


def _check_options(data: dict, options: dict, path: str, errors: list[str]) -> dict:
    prefix = f"{path}." if path else ""
    out = {}
    for key in data:
        if key not in options:
            known = ", ".join(sorted(options))
            errors.append(f"{prefix}{key}: unknown field; known fields here are: {known}")
    for key, spec in options.items():
        if key in data and data[key] is not None:
            out[key] = _check(data[key], spec, prefix + key, errors)
        elif spec.get("required"):
            errors.append(f"{prefix}{key}: required field is missing")
        elif "default" in spec:
            default = spec["default"]
            if spec.get("type") == "dict" and spec.get("options"):
                default = _check_options({}, spec["options"], prefix + key, errors)
            out[key] = default.copy() if isinstance(default, (dict, list)) else default
        else:
            out[key] = None
    return out


@dataclass(frozen=True)
class TimerConfig:
    idle_timeout: int = 600
    boot_timeout: int = 600
    down_timeout: int = 300
    backoff_initial: int = 60
    backoff_max: int = 1800
    interval: int = 30
    watch: int = 5
    prewarm: int = 60
    quiet: int = 1200


@dataclass(frozen=True)
class LimitConfig:
    max_launches_per_cycle: int = 10


@dataclass(frozen=True)
class Config:
    cluster: str
    resources: tuple[Resource, ...]
    wlm_type: str = "slurm"
    wlm_command_prefix: tuple[str, ...] = ()
    wlm_options: dict | None = None
    wlm_nodes: str = "dynamic"
    provider: str = "local"
    provider_options: dict | None = None
    timers: TimerConfig = TimerConfig()
    limits: LimitConfig = LimitConfig()
    state_file: str = "/var/lib/dcaas/state.json"
    status_listen: str = "127.0.0.1:8655"
    status_auth: str = "token"
    status_token_file: str = "/var/lib/dcaas/status.token"
    worker_user_data: dict | None = None

    def resource(self, name: str) -> Resource | None:
        for res in self.resources:
            if res.name == name:
                return res
        return None


def validated(data: Any, schema: dict) -> dict:
    """The mapping with defaults filled in; raise ConfigError listing every problem."""
    errors: list[str] = []
    out = _check_options(data if isinstance(data, dict) else {}, schema, "", errors)
    if errors:
        raise ConfigError(errors)
    return out


def parse(data: Any) -> Config:
    """Validate a config mapping and build a Config; raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError([f"the configuration must be a mapping, got {type(data).__name__}"])
    errors: list[str] = []
    d = _check_options(data, SCHEMA, "", errors)
    resources = []
    if isinstance(d.get("resources"), list):
        if not d["resources"]:
            errors.append("resources: at least one resource is needed")
        seen: set[str] = set()
        for i, r in enumerate(d["resources"]):
            if not isinstance(r, dict):
                continue
            path = f"resources[{i}]"
            name = r.get("name")
            if name in seen:
                errors.append(f"{path}.name: {name!r} is used by another resource; names must be unique")
            seen.add(name)
            if isinstance(r.get("min"), int) and isinstance(r.get("max"), int) and r["min"] > r["max"]:
                errors.append(f"{path}: min={r['min']} is above max={r['max']}; lower min or raise max")
            for key in ("cores", "memory_mb"):
                if r.get(key) is None:
                    flavor = f"flavor {r['flavor']!r}" if r.get("flavor") else "the worker flavor"
                    errors.append(f"{path}.{key}: required field is missing; give the size of {flavor}")
            if errors:
                continue
            resources.append(
                Resource(
                    name=r["name"],
                    flavor=r["flavor"],
                    image=r["image"],
                    cores=r["cores"],
                    memory_mb=r["memory_mb"],
                    min=r["min"],
                    max=r["max"],
                    spare=r["spare"],
                    priority=r["priority"],
                    zone=r["zone"],
                    tenant=r["tenant"],
                    accounts=tuple(r["accounts"]),
                    partitions=tuple(r["partitions"]),
                    features=tuple(r["features"]),
                    options=dict(r["options"]),
                )
            )
    t = d.get("timers") or {}
    initial, ceiling = t.get("backoff_initial"), t.get("backoff_max")
    if isinstance(initial, int) and isinstance(ceiling, int) and initial > ceiling:
        errors.append("timers.backoff_initial: must not be above timers.backoff_max")
    if errors:
        raise ConfigError(errors)
    return Config(
        cluster=d["cluster"],
        resources=tuple(resources),
        wlm_type=d["wlm"]["type"],
        wlm_command_prefix=tuple(d["wlm"]["command_prefix"]),
        wlm_options=dict(d["wlm"]["options"]),
        wlm_nodes=d["wlm"]["nodes"],
        provider=d["cloud"]["provider"],
        provider_options=dict(d["cloud"]["options"]),
        timers=TimerConfig(**d["timers"]),
        limits=LimitConfig(**d["limits"]),
        state_file=d["state_file"],
        status_listen=d["status_listen"],
        status_auth=d["status_auth"],
        status_token_file=d["status_token_file"],
        worker_user_data=dict(d["worker_user_data"]),
    )


def load(path: str) -> Config:
    """Read a JSON or YAML config file and parse it."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError([f"cannot read config file {path}: {exc.strerror}"]) from None
    if path.endswith((".yml", ".yaml")):
        try:
            import yaml  # lazily: only YAML configs need PyYAML
        except ImportError:
            raise ConfigError([f"{path}: reading YAML needs PyYAML (python3-yaml); or give a .json file"]) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError([f"{path}: not valid JSON: {exc}"]) from None
    return parse(data)
