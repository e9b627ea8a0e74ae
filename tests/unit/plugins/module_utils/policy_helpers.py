"""Builders and a tiny world model shared by the policy tests."""

from __future__ import annotations

from dataclasses import replace

from ansible_collections.dcaas.cluster.plugins.module_utils import config as cfgmod
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Job,
    Node,
    NodeState,
    Observed,
    Plan,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.naming import DRAIN_REASON_PREFIX

S = NodeState


def res(name: str = "small", **kw) -> dict:
    d = {"name": name, "flavor": "m1", "image": "worker", "cores": 4, "memory_mb": 8000, "max": 10}
    d.update(kw)
    return d


def cfg(*resources: dict, **timers) -> cfgmod.Config:
    limits = timers.pop("limits", {})
    return cfgmod.parse({"cluster": "t", "resources": list(resources) or [res()], "timers": timers, "limits": limits})


def job(jid: str | int, **kw) -> Job:
    kw.setdefault("state", "pending")
    return Job(id=str(jid), **kw)


def jobs(n: int, **kw) -> tuple[Job, ...]:
    return tuple(job(i, **kw) for i in range(n))


def node(name: str, resource: str = "small", state: NodeState = S.IDLE, **kw) -> Node:
    kw.setdefault("created", 0.0)
    kw.setdefault("cores", 4)
    kw.setdefault("memory_mb", 8000)
    kw.setdefault("in_wlm", state is not S.STARTING)
    kw.setdefault("instance_id", f"i-{name}")
    return Node(name=name, resource=resource, state=state, **kw)


def observed(jobs=(), nodes=(), **kw) -> Observed:
    return Observed(jobs=tuple(jobs), nodes=tuple(nodes), **kw)


def launched(plan: Plan) -> dict[str, int]:
    return {x.resource: x.count for x in plan.launches}


def acts(plan: Plan, kind: str | None = None) -> list[tuple[str, str]]:
    return [(a.action, a.node) for a in plan.actions if kind is None or a.action == kind]


def apply(obs: Observed, plan: Plan, config: cfgmod.Config, now: float, seq: list[int]) -> Observed:
    """Carry out a plan in a model world: launches appear as booting nodes,
    drains mark nodes drained by us, deletes remove them."""
    by_name = {n.name: n for n in obs.nodes}
    for a in plan.actions:
        n = by_name.get(a.node)
        if n is None:
            continue
        if a.action == "drain":
            by_name[a.node] = replace(n, state=S.DRAINING, drained_by_us=True, reason=DRAIN_REASON_PREFIX)
        elif a.action == "resume":
            by_name[a.node] = replace(n, state=S.IDLE, drained_by_us=False)
        elif a.action == "delete":
            del by_name[a.node]
    for x in plan.launches:
        r = config.resource(x.resource)
        for _index in range(x.count):
            seq[0] += 1
            name = f"n{seq[0]}"
            by_name[name] = node(name, r.name, S.STARTING, created=now, cores=r.cores, memory_mb=r.memory_mb)
    return replace(obs, nodes=tuple(by_name.values()))
