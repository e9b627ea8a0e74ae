# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Merge what the cloud and the WLM report into one view of the cluster.

Private to the dcaas.cluster collection. Pure functions: the reconcile loop
feeds them what the adapters read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    ROLE_WORKER,
    Headroom,
    Instance,
    InstanceStatus,
    Job,
    Node,
    NodeState,
    Observed,
    Resource,
    WlmNode,
    WlmState,
)

_WLM_STATE = {
    WlmState.IDLE: NodeState.IDLE,
    WlmState.BUSY: NodeState.BUSY,
    WlmState.DRAINING: NodeState.DRAINING,
    WlmState.DRAINED: NodeState.DRAINING,
    WlmState.DOWN: NodeState.DOWN,
    # Registered but not answering yet looks like a node still booting; the
    # boot timeout bounds how long that may last.
    WlmState.UNKNOWN: NodeState.STARTING,
}


def node_state(instance: Instance, wlm: WlmNode | None) -> tuple[NodeState, str | None]:
    if instance.status is InstanceStatus.DELETING:
        return NodeState.DELETING, None
    if instance.status is InstanceStatus.ERROR:
        return NodeState.DOWN, instance.fault or "instance failed"
    if instance.status is InstanceStatus.STOPPED:
        return NodeState.DOWN, instance.fault or "instance stopped"
    if wlm is None:
        return NodeState.STARTING, None
    return _WLM_STATE.get(wlm.state, NodeState.DOWN), wlm.reason


def merge(
    instances: Iterable[Instance],
    wlm_nodes: Iterable[WlmNode],
    jobs: Iterable[Job],
    resources: Iterable[Resource],
    cluster: str,
    headroom: Mapping[str, Headroom] | None = None,
    cloud_nodes: bool = False,
) -> Observed:
    """Join instances and WLM nodes by name.

    A WLM node that carries the cluster's name prefix but has no instance and
    no job is stale (its instance vanished): the plan forgets it. WLM nodes
    that are not ours (static servers, other clusters) are ignored entirely.

    With ``cloud_nodes`` (wlm.nodes: cloud) the WLM lists every node
    ``<cluster>-<resource>-<n>`` whether it runs or not; see _cloud_nodes.
    """
    jobs = tuple(jobs)
    by_res = {r.name: r for r in resources}
    wlm_by_name = {n.name: n for n in wlm_nodes}
    jobs_on: dict[str, list[str]] = {}
    for job in jobs:
        for name in job.node_names:
            jobs_on.setdefault(name, []).append(job.id)
    contradictions = _contradictions(jobs, jobs_on, wlm_by_name)
    instances = [i for i in instances if i.role == ROLE_WORKER]
    if cloud_nodes:
        # A node powered down and up again quickly can have a new instance
        # while the old one is still being deleted: the live one counts.
        live = {i.name for i in instances if i.status is not InstanceStatus.DELETING}
        instances = [i for i in instances if i.status is not InstanceStatus.DELETING or i.name not in live]

    nodes = []
    seen = set()
    moved = []
    powered_off = []
    for inst in instances:
        seen.add(inst.name)
        wlm = wlm_by_name.get(inst.name)
        state, reason = node_state(inst, wlm)
        in_wlm = wlm is not None
        if cloud_nodes and wlm is not None and state is not NodeState.DELETING:
            if wlm.state in (WlmState.OFF, WlmState.POWERING_DOWN):
                # Powered down in the WLM (by the engine, or by the WLM's own
                # power saving): nothing runs there, the instance goes.
                state, reason = NodeState.DELETING, "powered down in the WLM"
                powered_off.append(inst.name)
            elif wlm.state is WlmState.POWERING_UP:
                # Still booting: the node has not registered yet. A failed
                # instance stays DOWN and, not in the WLM, goes at once.
                in_wlm = False
                state, reason = node_state(inst, None)
        res = by_res.get(inst.resource)
        running = tuple(sorted(set(jobs_on.get(inst.name, ())) | set(wlm.jobs if wlm else ())))
        if state is NodeState.IDLE and running:
            state = NodeState.BUSY  # the node list lags the job list
        if wlm and wlm.address and inst.address and wlm.address != inst.address and _is_ip(wlm.address):
            # A restarted instance came back on a new address; the WLM still
            # knows the old one and cannot reach the node until told.
            moved.append((inst.name, inst.address))
        cores = (wlm.cores if wlm and wlm.cores else None) or (res.cores if res else 0)
        memory = (wlm.memory_mb if wlm and wlm.memory_mb else None) or (res.memory_mb if res else 0)
        nodes.append(
            Node(
                name=inst.name,
                resource=inst.resource,
                state=state,
                instance_id=inst.id,
                created=inst.created,
                cores=cores,
                memory_mb=memory,
                cores_alloc=wlm.cores_alloc if wlm else 0,
                jobs=running,
                address=inst.address or (wlm.address if wlm else None),
                zone=inst.zone,
                tenant=inst.tenant,
                drained_by_us=bool(wlm and naming.drained_by_engine(wlm.reason)),
                in_wlm=in_wlm,
                reason=reason,
                last_busy=wlm.last_busy if wlm else None,
            )
        )

    prefix = naming.node_prefix(cluster)
    if cloud_nodes:
        nodes.extend(_cloud_nodes(wlm_by_name, seen, jobs_on, by_res, cluster))
        stale: tuple[str, ...] = ()  # the WLM keeps its cloud nodes
    else:
        stale = tuple(
            sorted(
                n.name
                for n in wlm_by_name.values()
                if n.name not in seen
                and n.name.startswith(prefix)
                and (not n.features or naming.BASE_FEATURE in n.features)
                and not n.jobs
                and not jobs_on.get(n.name)
            )
        )
    return Observed(
        jobs=jobs,
        nodes=tuple(nodes),
        stale_wlm_nodes=stale,
        headroom=dict(headroom or {}),
        moved=tuple(moved),
        powered_off=tuple(powered_off),
        contradictions=contradictions,
    )


# Enough examples to find the cause; a broken answer can name thousands.
_MAX_CONTRADICTIONS = 3


def _contradictions(
    jobs: tuple[Job, ...], jobs_on: Mapping[str, list[str]], wlm_by_name: Mapping[str, WlmNode]
) -> tuple[str, ...]:
    """What the WLM's job list and node list say against each other.

    A job runs on nodes, and every node a job runs on is one the WLM lists.
    When either is not so, one of the two answers is incomplete (a WLM that
    lists no nodes at all, a node list cut short, an upgrade that moved a
    field), and a node missing from the list would look like an instance
    that never joined: the engine must not act on that.
    """
    found = [f"job {j.id} runs on no node the WLM names" for j in jobs if j.state == "running" and not j.node_names]
    missing = sorted(name for name in jobs_on if name not in wlm_by_name)
    found += [f"job {jobs_on[name][0]} runs on {name}, which the WLM's node list does not show" for name in missing]
    if len(found) > _MAX_CONTRADICTIONS:
        found = [*found[:_MAX_CONTRADICTIONS], f"and {len(found) - _MAX_CONTRADICTIONS} more"]
    return tuple(found)


def _cloud_nodes(
    wlm_by_name: Mapping[str, WlmNode],
    seen: set[str],
    jobs_on: Mapping[str, list[str]],
    by_res: Mapping[str, Resource],
    cluster: str,
) -> list[Node]:
    """The cloud nodes with no instance: off (with the jobs the WLM placed
    there while it was off), on their way off, or down after a failed power-up.

    A node the WLM thinks is up (idle, busy) although no instance exists is
    left alone: a wrong cloud setting (credentials, labels) must not make the
    engine power down nodes that run jobs. The WLM marks it down when it
    stops answering, and the policy then powers it down.
    """
    nodes = []
    for wlm in wlm_by_name.values():
        if wlm.name in seen:
            continue
        resource = naming.cloud_node_resource(wlm.name, cluster, by_res)
        if resource is None:
            continue
        if wlm.state in (WlmState.OFF, WlmState.POWERING_UP):
            state = NodeState.OFF
        elif wlm.state is WlmState.POWERING_DOWN:
            state = NodeState.DELETING
        elif wlm.state is WlmState.DOWN:
            state = NodeState.DOWN
        else:
            continue
        res = by_res[resource]
        nodes.append(
            Node(
                name=wlm.name,
                resource=resource,
                state=state,
                instance_id=None,
                created=0.0,
                cores=wlm.cores or res.cores,
                memory_mb=wlm.memory_mb or res.memory_mb,
                jobs=tuple(sorted(set(jobs_on.get(wlm.name, ())) | set(wlm.jobs))),
                in_wlm=True,
                reason=wlm.reason,
                last_busy=wlm.last_busy,
            )
        )
    return nodes


def _is_ip(text: str) -> bool:
    """Only an address the WLM pinned as an IP can go stale; a name is resolved anew."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
