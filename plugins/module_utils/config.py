# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine configuration: schema, validation and loading.

Private to the dcaas.cluster collection. Standard library only (PyYAML is
imported lazily for .yml files). Every error names the field with its full
path and says what would be valid, and validation happens before anything
acts, so a bad config never changes the cluster. Whatever the input, the only
exception that leaves ``parse`` and ``load`` is ConfigError, and its message
stays short: values are shown cut (``shown``), and only the first problems
are listed in it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from ansible_collections.dcaas.cluster.plugins.module_utils.errors import clip
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Resource

# The validator is options.py's, shared with the cloud providers and the WLM
# adapters (its old name here kept for the callers that know it).
from ansible_collections.dcaas.cluster.plugins.module_utils.options import check_fields as _check_options
from ansible_collections.dcaas.cluster.plugins.module_utils.options import data_problem, path_problem, shown
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm import registry
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import WorkloadManager

HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
DAY = 86400
WEEK = 7 * DAY
MAX_NODES = 10000  # a resource's min, max and spare
# Bounds on the whole document: no sane config comes near them, and they keep
# an alias bomb or a runaway template from costing memory, time or a huge message.
FILE_MAX_BYTES = 1024 * 1024
TREE_MAX_VALUES = 100_000
TREE_MAX_DEPTH = 64
YAML_MAX_ALIASES = 100
LISTED_ERRORS = 10
LOOPBACK_HINT = "127.0.0.1:8655"


def _seconds(default: int, low: int, high: int) -> dict:
    return {"type": "int", "default": default, "min": low, "max": high, "unit": " seconds"}


def _listen_problem(value: str) -> str | None:
    try:
        port = listen_address(value)[1]
    except ValueError as exc:
        return f"{shown(value)}: {exc}"
    if port == 0:
        # The socket layer reads port 0 as "any free port": the API would move
        # at every restart and nobody would be told where. Only tests want that.
        return f"{shown(value)}: port 0 would listen on another free port at every start; give a fixed port, e.g. 8655"
    return None


RESOURCE_SPEC: dict[str, dict] = {
    "name": {"type": "name", "required": True},
    "flavor": {"type": "text", "required": True, "what": "the cloud flavor's name"},
    "image": {"type": "text", "required": True, "what": "the worker image's name"},
    "cores": {"type": "int", "min": 1, "max": 4096},
    "memory_mb": {"type": "int", "min": 1, "max": 64 * 1024 * 1024, "unit": " MiB"},
    "min": {"type": "int", "default": 0, "min": 0, "max": MAX_NODES},
    "max": {"type": "int", "default": 10, "min": 0, "max": MAX_NODES},
    # Cloud nodes: idle nodes kept powered up, ready for the next job, while
    # jobs for the resource keep coming (timers.quiet).
    "spare": {"type": "int", "default": 1, "min": 0, "max": MAX_NODES},
    "priority": {"type": "int", "default": 100, "min": -(10**6), "max": 10**6},
    "zone": {"type": "text", "what": "the availability zone's name, or leave the field out"},
    "tenant": {"type": "text", "what": "the cloud project's name, or leave the field out"},
    "accounts": {"type": "list", "elements": "text", "default": []},
    "partitions": {"type": "list", "elements": "text", "default": []},
    "features": {"type": "list", "elements": "text", "default": []},
    # The cloud provider's settings for the resource, and the keys the WLM
    # adapter declares (its RESOURCE_OPTION_SPEC), which parse checks and
    # keeps apart (Resource.wlm_options).
    "options": {"type": "dict", "default": {}},
}

SCHEMA: dict[str, dict] = {
    "cluster": {"type": "name", "required": True},
    "wlm": {
        "type": "dict",
        "default": {},
        "options": {
            # One of the registry's adapters; parse checks it, its options
            # against the adapter's OPTION_SPEC and `nodes` against its
            # capabilities.
            "type": {"type": "text", "default": registry.DEFAULT, "what": "a workload manager's name"},
            "command_prefix": {"type": "list", "elements": "text", "default": []},
            # dynamic: workers join the WLM when they boot and leave when
            # deleted. cloud: every resource's max nodes are known to the WLM,
            # off until needed: the WLM places and reserves jobs on them and
            # the engine powers them up and down.
            "nodes": {"type": "str", "default": "dynamic", "choices": ["dynamic", "cloud"]},
            "options": {"type": "dict", "default": {}, "adapter": True},
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
            "idle_timeout": _seconds(600, 0, WEEK),
            "boot_timeout": _seconds(600, 1, WEEK),
            "down_timeout": _seconds(300, 0, WEEK),
            "backoff_initial": _seconds(60, 1, WEEK),
            "backoff_max": _seconds(1800, 1, WEEK),
            "interval": _seconds(30, 1, DAY),
            # Between passes, look at the pending job ids this often and pass
            # at once when a new one appears; 0 turns the watch off.
            "watch": _seconds(5, 0, DAY),
            # Cloud nodes: power up the nodes the WLM plans for a job this
            # long before its planned start (about one boot); 0: at the start.
            "prewarm": _seconds(60, 0, DAY),
            # Cloud nodes: no job for a resource submitted this long: its idle
            # nodes go after `prewarm` seconds (not idle_timeout) and it keeps
            # no spare; 0: off (no spare either).
            "quiet": _seconds(1200, 0, WEEK),
        },
    },
    "limits": {
        "type": "dict",
        "default": {},
        "options": {"max_launches_per_cycle": {"type": "int", "default": 10, "min": 1, "max": 1000}},
    },
    # Extra cloud-config for every worker (site ssh keys, packages, users),
    # merged with what the WLM adapter needs to join.
    "worker_user_data": {"type": "dict", "default": {}},
    "state_file": {"type": "path", "default": "/var/lib/dcaas/state.json"},
    "status_listen": {
        "type": "text",
        "default": LOOPBACK_HINT,
        "what": f"host:port, e.g. {LOOPBACK_HINT}",
        "check": _listen_problem,
    },
    # token: every status request carries the token kept in status_token_file
    # (created by the daemon, mode 0600); none: only on a loopback address.
    "status_auth": {"type": "str", "default": "token", "choices": ["token", "none"]},
    "status_token_file": {"type": "path", "default": "/var/lib/dcaas/status.token"},
}


class ConfigError(ValueError):
    """The configuration is invalid; ``errors`` lists every problem found.

    The message lists the first few, each cut to a bounded length, so that
    a config with thousands of problems still yields a readable error.
    """

    def __init__(self, errors: list[str]):
        self.errors = errors
        listed = [clip(e) for e in errors[:LISTED_ERRORS]]
        if len(errors) > LISTED_ERRORS:
            listed.append(f"... and {len(errors) - LISTED_ERRORS} more problems")
        super().__init__("invalid dcaas engine configuration:\n  - " + "\n  - ".join(listed))


def with_state_file(cfg: Config, path: Any) -> Config:
    """``cfg`` with another state file (a front end's ``state_file`` option), checked as the loader checks it."""
    problem = path_problem(path, "/var/lib/dcaas/state.json")
    if problem is None and path == cfg.status_token_file:
        problem = f"{shown(path)} is the status_token_file; give the state a file of its own"
    if problem:
        raise ConfigError([f"state_file: {problem}"])
    return replace(cfg, state_file=path)


def listen_address(text: str) -> tuple[str, int]:
    """(host, port) of a status_listen value ("[::1]:8655": host "::1"); ValueError says what is wrong.

    The one parser of status_listen, for the loader and the daemon. Port 0
    parses (the daemon then listens on any free port, which its tests use);
    the loader refuses it for an admin's config (_listen_problem).
    """
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError("an IPv6 address goes in brackets before the port, e.g. [::1]:8655")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{shown(host)} is not an IPv6 address") from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"give host:port, e.g. {LOOPBACK_HINT}")
        if ":" in host:
            raise ValueError("write an IPv6 address in brackets, e.g. [::1]:8655")
        if not host:
            # Servers read an empty host as every interface: say it.
            raise ValueError(f"give a host: {LOOPBACK_HINT} for this machine only, 0.0.0.0:{port} for every interface")
        if not _is_ipv4(host) and (
            len(host) > 253 or not HOSTNAME_RE.fullmatch(host) or host.rsplit(".", 1)[-1].isdigit()
        ):
            raise ValueError(f"{shown(host)} is neither an IP address nor a host name")
    if not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        raise ValueError(f"port {shown(port)} is not a number from 1 to 65535")
    return host, int(port)


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach host (0.0.0.0 and :: are every interface, not loopback)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tree_problem(data: Any) -> str | None:
    """Whether the whole document is too big or too deep to be a config (an alias bomb, a cycle)."""
    count, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > TREE_MAX_DEPTH:
            return f"the configuration is nested more than {TREE_MAX_DEPTH} levels deep; flatten it"
        if isinstance(value, dict):
            children: Any = list(value.values())  # Ansible's lazy dicts give a generator
        elif isinstance(value, list):
            children = value
        else:
            continue
        count += len(children)
        if count > TREE_MAX_VALUES:
            return (
                f"the configuration holds more than {TREE_MAX_VALUES} values"
                " (YAML aliases repeated into a huge tree?); give a smaller one"
            )
        stack.extend((child, depth + 1) for child in children)
    return None


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
    wlm_type: str = registry.DEFAULT
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


def _validate(data: Any, schema: dict) -> tuple[dict, list[str]]:
    if not isinstance(data, dict):
        # The type only: the text of a wrongly typed config can hold its credentials.
        raise ConfigError([f"the configuration must be a mapping, got {type(data).__name__}"])
    problem = _tree_problem(data)
    if problem:
        raise ConfigError([problem])
    errors: list[str] = []
    return _check_options(data, schema, "", errors), errors


def validated(data: Any, schema: dict) -> dict:
    """The mapping with defaults filled in; raise ConfigError listing every problem."""
    out, errors = _validate(data, schema)
    if errors:
        raise ConfigError(errors)
    return out


def parse(data: Any) -> Config:
    """Validate a config mapping and build a Config; raise ConfigError listing every problem."""
    d, errors = _validate(data, SCHEMA)
    adapter, wlm_options = _wlm_adapter(d, errors)
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
            if isinstance(name, str):
                if name in seen:
                    errors.append(f"{path}.name: {shown(name)} is used by another resource; names must be unique")
                seen.add(name)
            if isinstance(r.get("min"), int) and isinstance(r.get("max"), int) and r["min"] > r["max"]:
                errors.append(f"{path}: min={shown(r['min'])} is above max={shown(r['max'])}; lower min or raise max")
            for key in ("cores", "memory_mb"):
                if r.get(key) is None:
                    flavor = f"flavor {shown(r['flavor'])}" if r.get("flavor") else "the worker flavor"
                    errors.append(f"{path}.{key}: required field is missing; give the size of {flavor}")
            options, own = _resource_wlm_options(r["options"], adapter, f"{path}.options", errors)
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
                    options=options,
                    wlm_options=own,
                )
            )
    t = d["timers"] if isinstance(d.get("timers"), dict) else {}
    initial, ceiling = t.get("backoff_initial"), t.get("backoff_max")
    if isinstance(initial, int) and isinstance(ceiling, int) and initial > ceiling:
        errors.append("timers.backoff_initial: must not be above timers.backoff_max")
    errors.extend(_status_problems(d))
    if errors:
        raise ConfigError(errors)
    return Config(
        cluster=d["cluster"],
        resources=tuple(resources),
        wlm_type=d["wlm"]["type"],
        wlm_command_prefix=tuple(d["wlm"]["command_prefix"]),
        wlm_options=wlm_options,
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


def _wlm_adapter(d: dict, errors: list[str]) -> tuple[type[WorkloadManager] | None, dict]:
    """The adapter ``wlm.type`` names and its ``wlm.options``, checked against
    its OPTION_SPEC (defaults filled in, options left unset left out), or
    (None, {}) when the name is not one; problems go to ``errors``."""
    wlm = d.get("wlm")
    if not isinstance(wlm, dict) or not isinstance(wlm.get("type"), str):
        return None, {}  # reported with the field
    try:
        adapter = registry.adapter(wlm["type"])
    except ValueError as exc:
        errors.append(str(exc))
        return None, {}
    refused = adapter.cloud_nodes_refused()
    if wlm.get("nodes") == "cloud" and refused:
        errors.append(refused)
    options = wlm.get("options")
    if not isinstance(options, dict):
        return adapter, {}  # reported with the field
    checked = _check_options(options, adapter.OPTION_SPEC, "wlm.options", errors)
    return adapter, {k: v for k, v in checked.items() if v is not None}


def _resource_wlm_options(
    options: dict, adapter: type[WorkloadManager] | None, path: str, errors: list[str]
) -> tuple[dict, dict]:
    """A resource's options split into the cloud provider's and the WLM adapter's.

    The adapter's keys (its RESOURCE_OPTION_SPEC) are checked against that
    spec here; the rest is the provider's, which it checks itself.
    """
    if not isinstance(options, dict):
        return {}, {}  # reported with the field
    spec = adapter.RESOURCE_OPTION_SPEC if adapter else {}
    cloud = {k: v for k, v in options.items() if k not in spec}
    own = {k: v for k, v in options.items() if k in spec}
    if data_problem(own, path):
        return cloud, {}  # reported with the field
    checked = _check_options(own, spec, path, errors)
    return cloud, {k: v for k, v in checked.items() if v is not None}


def _status_problems(d: dict) -> list[str]:
    """The checks that join status_listen, status_auth and the two files (each alone is valid)."""
    problems = []
    try:
        host = listen_address(d["status_listen"])[0]
    except (TypeError, ValueError, AttributeError):
        host = None  # reported with the field
    if host is not None and not is_loopback(host) and d["status_auth"] == "none":
        problems.append(
            f"status_listen: {shown(host)} is reachable from other machines; keep status_auth: token"
            f" (the default) or listen on {LOOPBACK_HINT}"
        )
    if isinstance(d["state_file"], str) and d["state_file"] == d["status_token_file"]:
        problems.append("status_token_file: must not be the state_file; give another file")
    return problems


def load(path: str) -> Config:
    """Read a JSON or YAML config file (UTF-8, at most FILE_MAX_BYTES) and parse it."""
    where = shown(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(FILE_MAX_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"cannot read config file {where}: {clip(reason, 100)}"]) from None
    if len(raw) > FILE_MAX_BYTES:
        raise ConfigError([f"{where}: larger than {FILE_MAX_BYTES} bytes; an engine config is a few KiB"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{where}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
    return parse(_load_yaml(text, where) if path.endswith((".yml", ".yaml")) else _load_json(text, where))


def _load_json(text: str, where: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError([f"{where}: key {shown(key)} appears twice in one object; keep one"])
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except ConfigError:
        raise  # from no_duplicates (a ValueError too)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{where}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ConfigError([f"{where}: not valid JSON: {clip(str(exc), 100)}"]) from None
    except RecursionError:
        raise ConfigError([f"{where}: nested too deeply"]) from None


def _load_yaml(text: str, where: str) -> Any:
    try:
        import yaml  # lazily: only YAML configs need PyYAML
    except ImportError:
        raise ConfigError([f"{where}: reading YAML needs PyYAML (python3-yaml); or give a .json file"]) from None

    class Loader(yaml.SafeLoader):
        """Refuses duplicate keys (YAML keeps the last silently) and alias bombs."""

        aliases = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > YAML_MAX_ALIASES:
                    raise ConfigError([f"{where}: more than {YAML_MAX_ALIASES} YAML aliases (*name); write it out"])
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for key_node, _value in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                        continue  # keys merged in by '<<' may be overridden: that is their point
                    key = self.construct_object(key_node)
                    if key in seen:
                        raise ConfigError(
                            [f"{where}: line {key_node.start_mark.line + 1}: key {shown(key)} appears twice; keep one"]
                        )
                    seen.add(key)
            return super().construct_mapping(node, deep)

    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader: plain data only
    except ConfigError:
        raise  # from Loader (a ValueError too)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError([f"{where}: not valid YAML{at}: {clip(str(exc.problem or exc.context), 100)}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{where}: not valid YAML: {clip(str(exc), 100)}"]) from None
    except (ValueError, OverflowError) as exc:  # PyYAML converts odd ints and dates with Python's own checks
        raise ConfigError([f"{where}: not valid YAML: {clip(str(exc), 100)}"]) from None
    except RecursionError:
        raise ConfigError([f"{where}: nested too deeply"]) from None
