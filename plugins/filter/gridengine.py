# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: gridengine_objects
short_description: The Grid Engine objects a head needs for the engine's resources, as the adapter writes them
version_added: 0.3.0
description:
  - Takes the engine configuration as the head sees it (C(cluster), C(wlm) with C(type=gridengine) and its
    C(options), C(resources)), checks it with the engine's own schema and returns every Grid Engine object
    the head creates for it, in the format C(qconf -A*) reads. The queues come from the Grid Engine
    adapter's own C(queue_config), so the head and the adapter's C(admit) write the same thing.
  - Per resource - a project per account, the host group C(@<cluster>_<resource>), the queue
    C(<cluster>_<resource>.q). Once - the host group C(@<cluster>_drained) (the adapter's drain marker),
    and each parallel environment of C(wlm.options.parallel_environments).
  - With O(placeholders) - one execution host C(future-<resource>) per resource in its host group, never
    started (state C(u)), so C(qsub) accepts jobs (also C(-q <queue>)) for a pool that has no worker yet.
    Its address is from 192.0.2.0/24 (TEST-NET-1, never routed) and goes into the head's C(/etc/hosts),
    because Grid Engine adds only hosts whose names resolve. The engine ignores it (its name does not start
    with C(<cluster>-)).
  - Fails naming the field when the configuration cannot be read.
author:
  - dcaas.cluster developers (@dcaas-cluster)
options:
  _input:
    description: The engine configuration (C(cluster), C(wlm), C(resources)).
    type: dict
    required: true
  placeholders:
    description: Register one never-started placeholder host per resource.
    type: bool
    default: true
  pe_config:
    description: Keys that override the role's parallel environment settings (C(slots), C(allocation_rule)...).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The objects for the engine's resources
  ansible.builtin.debug:
    msg: "{{ dcaas_engine | dcaas.cluster.gridengine_objects }}"
"""

RETURN = r"""
_value:
  description:
    - C(objects) - a list of mappings, each with C(kind) (C(project), C(hostgroup), C(queue), C(pe),
      C(exechost)), C(name), C(list) (the qconf option that lists its kind), C(show), C(add), C(modify)
      (qconf options) and C(config) (the object in qconf's file format, one C(key value) line each).
      Ordered so that each object's references exist before it.
    - C(placeholders) - the placeholder hosts, each with C(name) and C(address).
  type: dict
"""

import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.dcaas.cluster.plugins.module_utils.config import ConfigError, parse
from ansible_collections.dcaas.cluster.plugins.module_utils.options import shown
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.gridengine import (
    GridEngineConfigError,
    GridEngineManager,
    config_fields,
    exec_host_config,
    project_config,
)

# The kinds, in the order that lets each refer to the ones before it, with
# the qconf options that list, show, add and modify one.
_KINDS = {
    "project": ("-sprjl", "-sprj", "-Aprj", "-Mprj"),
    "pe": ("-spl", "-sp", "-Ap", "-Mp"),
    "exechost": ("-sel", "-se", "-Ae", None),
    "hostgroup": ("-shgrpl", "-shgrp", "-Ahgrp", "-Mhgrp"),
    "queue": ("-sql", "-sq", "-Aq", "-Mq"),
    # One scheduler configuration, always there: only modified.
    "scheduler": (None, "-ssconf", None, "-Msconf"),
}
# The keys of each kind that name other objects: dcaas adds its own to what
# is there and never takes a member out (admit adds workers to host groups).
_UNION_KEYS = {"hostgroup": ("hostlist",)}
# What the head decides about each kind; any other key stays as the site set it.
_OWN_KEYS = {
    "project": (),
    "pe": ("allocation_rule", "control_slaves", "job_is_first_task", "slots"),
    "exechost": (),
    "hostgroup": ("hostlist",),
    "queue": ("hostlist", "seq_no", "load_thresholds", "pe_list", "slots", "projects"),
}
# The scheduler's keys the head decides are the ones its configuration names.
_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}")
_GROUP_RE = re.compile(r"@[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# What qconf prints for a list of a kind that has none ("no project list defined").
_EMPTY_LIST_RE = re.compile(r"(?i)\bno\b[\w ]* defined")
_PLACEHOLDER_PREFIX = "future-"
_PLACEHOLDER_NET = "192.0.2."
_PE_DEFAULTS = {
    "pe_name": "",
    "slots": "9999",
    "user_lists": "NONE",
    "xuser_lists": "NONE",
    "start_proc_args": "NONE",
    "stop_proc_args": "NONE",
    "allocation_rule": "$pe_slots",
    "control_slaves": "TRUE",
    "job_is_first_task": "FALSE",
    "urgency_slots": "min",
    "accounting_summary": "FALSE",
    "qsort_args": "NONE",
}


class _NoRunner:
    """The adapter only formats here: a command would be a bug."""

    def run(self, argv, check=True, input_text=None):
        raise AnsibleFilterError(f"gridengine_objects: the adapter tried to run {shown(list(argv))}")


def _text(settings: Mapping[str, Any]) -> str:
    return "".join(f"{key} {value}\n" for key, value in settings.items())


def _object(kind: str, name: str, config: str, own: tuple[str, ...] | None = None) -> dict:
    listing, show, add, modify = _KINDS[kind]
    return {
        "kind": kind,
        "name": name,
        "list": listing,
        "show": show,
        "add": add,
        "modify": modify,
        "config": config,
        "own": list(_OWN_KEYS[kind] if own is None else own),
    }


def _mapping(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise AnsibleFilterError(f"{what}: must be a mapping of Grid Engine keys to values, got {shown(value)}")
    bad = [k for k, v in value.items() if not isinstance(v, (str, int)) or "\n" in str(v) or not str(v).strip()]
    if bad:
        raise AnsibleFilterError(f"{what}: {shown(bad[0])} must have a one-line, non-empty value")
    return {k: str(v) for k, v in value.items()}


def gridengine_objects(
    engine: Any, placeholders: bool = True, pe_config: Any = None, scheduler_config: Any = None
) -> dict:
    try:
        cfg = parse(engine)
    except ConfigError as exc:
        raise AnsibleFilterError(f"the engine configuration: {exc}") from None
    if cfg.wlm_type != GridEngineManager.name:
        raise AnsibleFilterError(f"wlm.type: must be {GridEngineManager.name!r} here, got {shown(cfg.wlm_type)}")
    pe_settings = _mapping(pe_config, "pe_config")
    scheduler = _mapping(scheduler_config, "scheduler_config")
    if placeholders and f"{cfg.cluster}-".startswith(_PLACEHOLDER_PREFIX):
        raise AnsibleFilterError(
            f"cluster: {shown(cfg.cluster)} would make the placeholder hosts ({_PLACEHOLDER_PREFIX}<resource>) "
            "look like the engine's workers; choose another cluster name or turn the placeholders off"
        )
    if placeholders and len(cfg.resources) > 254:
        raise AnsibleFilterError(f"resources: at most 254 with placeholders (192.0.2.1-254), got {len(cfg.resources)}")
    manager = GridEngineManager(_NoRunner(), cfg.wlm_options, cluster=cfg.cluster)  # type: ignore[arg-type]
    objects = [_object("scheduler", "global", _text(scheduler), tuple(scheduler))] if scheduler else []
    projects = sorted({account for res in cfg.resources for account in res.accounts})
    holders = []
    try:
        objects += [_object("project", p, project_config(p)) for p in projects]
        # A multi-host PE job spans the hosts of one resource: the slots per
        # host are a worker's cores when every resource has the same number,
        # else all of a job's slots go on one host.
        cores = {res.cores for res in cfg.resources}
        rule = str(cores.pop()) if len(cores) == 1 else "$pe_slots"
        for pe in (cfg.wlm_options or {}).get("parallel_environments") or ():
            settings = {**_PE_DEFAULTS, "allocation_rule": rule, **pe_settings, "pe_name": pe}
            objects.append(_object("pe", pe, _text(settings)))
        for index, res in enumerate(cfg.resources):
            host = f"{_PLACEHOLDER_PREFIX}{res.name}"
            group = manager.host_group(res.name)
            if placeholders:
                holders.append({"name": host, "address": f"{_PLACEHOLDER_NET}{index + 1}"})
                objects.append(_object("exechost", host, exec_host_config(host)))
            members = host if placeholders else "NONE"
            objects.append(_object("hostgroup", group, _text({"group_name": group, "hostlist": members})))
        drained = manager.drained_group
        objects.append(_object("hostgroup", drained, _text({"group_name": drained, "hostlist": "NONE"})))
        objects += [_object("queue", manager.queue(res.name), manager.queue_config(res)) for res in cfg.resources]
    except (GridEngineConfigError, ValueError) as exc:
        raise AnsibleFilterError(str(exc)) from None
    return {"objects": objects, "placeholders": holders}


def gridengine_host_objects(name: Any, hostgroup: Any) -> list[dict]:
    """A static execution host and its membership of ``hostgroup``, as objects for gridengine_changes."""
    for what, value, pattern in (("name", name, _HOST_RE), ("hostgroup", hostgroup, _GROUP_RE)):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise AnsibleFilterError(f"{what}: {shown(value)} is not a Grid Engine {what} name")
    if name.startswith(_PLACEHOLDER_PREFIX):
        raise AnsibleFilterError(f"name: {shown(name)} is the name of a placeholder ({_PLACEHOLDER_PREFIX}<resource>)")
    return [
        _object("exechost", name, exec_host_config(name)),
        _object("hostgroup", hostgroup, _text({"group_name": hostgroup, "hostlist": name})),
    ]


def gridengine_listed(results: Any) -> dict[str, list[str]]:
    """{qconf list option: names} from a loop of ``qconf -s*l`` results; "no ... defined" is an empty list."""
    if not isinstance(results, list):
        raise AnsibleFilterError("gridengine_listed: takes the results of the loop that listed each kind")
    listed = {}
    for result in results:
        option = result.get("item") if isinstance(result, Mapping) else None
        if not isinstance(option, str):
            raise AnsibleFilterError(f"gridengine_listed: a result without its list option: {shown(result)}")
        text = f"{result.get('stdout', '')}\n{result.get('stderr', '')}"
        if result.get("rc") == 0:
            names = str(result.get("stdout", "")).split()
        elif _EMPTY_LIST_RE.search(text):
            names = []
        else:
            raise AnsibleFilterError(f"qconf {option} failed: {shown(text.strip())}")
        listed[option] = names
    return listed


def _tokens(value: str) -> list[str]:
    return sorted(value.replace(",", " ").lower().split())


def gridengine_changes(results: Any) -> list[dict]:
    """What to change so that every object exists with the keys the head decides.

    ``results`` are the results of a loop over the objects that ran
    ``qconf <show> NAME`` for the objects that exist and skipped the others.
    Returns the objects to add (``action: add``) and those to modify
    (``action: modify``, ``config`` = what is there with the head's keys set);
    objects already right are left out.
    """
    if not isinstance(results, list):
        raise AnsibleFilterError("gridengine_changes: takes the results of the loop that showed each object")
    changes = []
    for result in results:
        obj = result.get("item") if isinstance(result, Mapping) else None
        if not isinstance(obj, Mapping) or obj.get("kind") not in _KINDS:
            raise AnsibleFilterError(f"gridengine_changes: a result without its object: {shown(result)}")
        if result.get("skipped"):
            if obj["add"] is None:
                raise AnsibleFilterError(f"gridengine_changes: the {obj['kind']} {shown(obj['name'])} must exist")
            changes.append({**obj, "action": "add"})
            continue
        if result.get("rc") != 0 or not isinstance(result.get("stdout"), str):
            raise AnsibleFilterError(
                f"qconf {obj['show']} {obj['name']} failed: {shown(result.get('stderr') or result.get('msg'))}"
            )
        have = config_fields(result["stdout"])
        want = config_fields(obj["config"])
        merged = dict(have)
        for name in obj["own"]:
            if name in _UNION_KEYS.get(obj["kind"], ()):
                members = [m for m in have.get(name, "NONE").split() if m != "NONE"]
                members += [m for m in want[name].split() if m != "NONE" and m not in members]
                merged[name] = " ".join(members) or "NONE"
            else:
                merged[name] = want[name]
        if any(_tokens(merged[k]) != _tokens(have.get(k, "")) for k in merged) and obj["modify"]:
            changes.append({**obj, "action": "modify", "config": _text(merged)})
    return changes


class FilterModule:
    def filters(self):
        return {
            "gridengine_objects": gridengine_objects,
            "gridengine_host_objects": gridengine_host_objects,
            "gridengine_listed": gridengine_listed,
            "gridengine_changes": gridengine_changes,
        }
