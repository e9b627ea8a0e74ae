# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan for dynamic nodes (``wlm.nodes: dynamic``): the WLM knows only
the workers that exist, so the policy launches nodes for what waits.

Private to the dcaas.cluster collection. The steps (supply, demand, floor,
retirement) are described in the package's docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Controls,
    Launch,
    Node,
    NodeAction,
    NodeState,
    Observed,
    Plan,
    Timers,
    Unfit,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.packing import pack
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.pools import (
    Pool,
    idle_retirement,
    make_pools,
    order_key,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.timers import idle_started


@dataclass
class _Supply:
    """What one look at the nodes found (step 1)."""

    actions: list[NodeAction] = field(default_factory=list)  # deletes of nodes that failed
    idle_since: dict[str, float] = field(default_factory=dict)
    down_since: dict[str, float] = field(default_factory=dict)
    resumable: dict[str, Node] = field(default_factory=dict)  # drained by us, empty, may be resumed
    bins: list[list] = field(default_factory=list)  # free room, oldest node first (see pack)
    retiring: list[Node] = field(default_factory=list)  # idle and draining nodes retirement looks at


def decide_dynamic(observed: Observed, config: Config, now: float, timers: Timers, controls: Controls) -> Plan:
    """The plan for dynamic nodes (see the package's docstring)."""
    notes: list[str] = []
    backoff, pools = make_pools(observed, config, now, timers, controls, notes)
    supply = _supply(observed, config, now, timers, controls, pools)
    ordered_pools = sorted(pools.values(), key=lambda p: order_key(p.resource))
    unfit, used_nodes = _demand_and_floor(observed, config, ordered_pools, pools, supply)
    launches = _launches(ordered_pools, notes)
    actions = supply.actions
    actions += _retirement(observed, config, now, controls, pools, supply, used_nodes)
    return Plan(
        launches=tuple(launches),
        actions=tuple(actions),
        unfit=tuple(unfit),
        timers=Timers(idle_since=supply.idle_since, down_since=supply.down_since, backoff=backoff),
        notes=tuple(notes),
    )


def _supply(
    observed: Observed, config: Config, now: float, timers: Timers, controls: Controls, pools: dict[str, Pool]
) -> _Supply:
    """Step 1: supply, and nodes that failed.

    One pass over the nodes (a busy cluster has thousands, and the daemon
    and the simulator call this often). Enum members are looked up once
    (an attribute of an Enum class is a slow lookup), busy nodes are only
    counted, and the idle and draining nodes retirement looks at are kept.
    """
    BUSY, IDLE, DRAINING, DOWN, STARTING, DELETING = (
        NodeState.BUSY,
        NodeState.IDLE,
        NodeState.DRAINING,
        NodeState.DOWN,
        NodeState.STARTING,
        NodeState.DELETING,
    )
    t = config.timers
    frozen = controls.frozen
    held_nodes = controls.held_nodes
    drained_resources = controls.drained_resources
    order = {r.name: order_key(r) for r in config.resources}
    out = _Supply()
    # Locals, not attributes, in the loop over every node.
    actions, idle_since, down_since = out.actions, out.idle_since, out.down_since
    resumable, retiring = out.resumable, out.retiring
    supply: list[tuple] = []
    # Busy nodes, most of a busy cluster, only count towards min/max. Two
    # list comprehensions and list.count are much cheaper than the loop.
    busy = [node.resource for node in observed.nodes if node.state is BUSY]
    for pool in pools.values():
        pool.count = busy.count(pool.resource.name)
    for node in [node for node in observed.nodes if node.state is not BUSY]:
        state = node.state
        if state is DELETING:
            continue
        name = node.name
        if state is DOWN:
            since = timers.down_since.get(name, now)
            down_since[name] = since
            expired = not node.in_wlm or now - since >= t.down_timeout
            if expired and not node.running_jobs and name not in held_nodes and not frozen:
                why = node.reason or "down"
                actions.append(NodeAction("delete", name, node.resource, f"{why} for {now - since:.0f}s; replacing"))
                continue
        elif (
            state is STARTING
            and now - node.created > t.boot_timeout
            and not node.running_jobs
            and name not in held_nodes
            and not frozen
        ):
            why = f"did not join the WLM within boot_timeout={t.boot_timeout}s; replacing"
            actions.append(NodeAction("delete", name, node.resource, why))
            continue
        running = node.running_jobs
        pool = pools.get(node.resource)
        if state is IDLE:
            if not running:
                since = kept = timers.idle_since.get(name)
                if kept is None or (node.last_busy is not None and node.last_busy > kept):
                    since = idle_started(node, kept, now, t.interval)
                idle_since[name] = since
                # Retirement looks only at idle nodes it may drain.
                if now - since >= t.idle_timeout or pool is None or node.resource in drained_resources:
                    retiring.append(node)
        elif state is DRAINING:
            retiring.append(node)
        if pool is None:
            continue  # resource no longer configured: retired below
        pool.count += 1
        if state is DRAINING and not node.drained_by_us:
            pool.out_of_service += 1
        if node.resource in drained_resources:
            continue  # being emptied by the admin: not supply
        free = state is IDLE and not running
        if state is DRAINING and node.drained_by_us and not running and pool.usable:
            resumable[name] = node
            free = True
        if free or state is STARTING:
            bin_ = [node.cores, node.memory_mb, name if free else None, node.resource]
            supply.append((node.created, order[node.resource], name, bin_))
    supply.sort()  # names are unique: the bins are never compared
    out.bins = [s[3] for s in supply]
    return out


def _demand_and_floor(
    observed: Observed, config: Config, ordered_pools: list[Pool], pools: dict[str, Pool], supply: _Supply
) -> tuple[list[Unfit], set[str]]:
    """Steps 2 and 3: demand and floor, to a fixed point. Sets each pool's
    planned launches; returns the unfit jobs and the existing nodes that
    received work (or that min keeps).

    Each round packs the queue onto what exists plus what earlier rounds
    planned, as booting nodes in launch order: exactly what the next cycle
    will observe. A round that adds nothing proves the next cycle will not
    launch again for the same demand.
    """
    budget = config.limits.max_launches_per_cycle
    resources = list(config.resources)
    unfit: list[Unfit] = []
    used_nodes: set[str] = set()
    for _round in range(sum(p.resource.max for p in ordered_pools) + 2):
        bins = list(map(list, supply.bins))
        for pool in ordered_pools:
            res = pool.resource
            bins.extend([res.cores, res.memory_mb, None, res.name] for _node in range(pool.planned))
            pool.launch = 0
        planned_total = sum(p.planned for p in ordered_pools)
        unfit, used_nodes = pack(observed.jobs, resources, pools, bins, budget - planned_total)
        for pool in ordered_pools:
            idle_drained = sorted(
                n for n, node in supply.resumable.items() if node.resource == pool.resource.name and n not in used_nodes
            )
            serving = pool.count - pool.out_of_service - len(idle_drained)
            short = pool.resource.min - serving - pool.planned - pool.launch
            if short > 0 and pool.usable:
                # Keep drained nodes the floor needs rather than delete and relaunch them.
                used_nodes.update(idle_drained[:short])
                short -= len(idle_drained[:short])
                n = min(short, pool.room())
                pool.launch += n
                pool.floor += n
        if not any(p.launch for p in ordered_pools):
            break
        for pool in ordered_pools:
            pool.planned += pool.launch
    return unfit, used_nodes


def _launches(ordered_pools: list[Pool], notes: list[str]) -> list[Launch]:
    launches = []
    for pool in ordered_pools:
        if not pool.planned:
            continue
        if pool.floor:
            notes.append(f"resource {pool.resource.name!r} below min={pool.resource.min}: launching {pool.floor}")
        why = [f"{len(pool.jobs)} pending job(s)"] if pool.jobs else []
        why += [f"min={pool.resource.min}"] if pool.floor else []
        launches.append(Launch(pool.resource.name, pool.planned, " and ".join(why), tuple(pool.jobs[:50])))
    return launches


def _retirement(
    observed: Observed,
    config: Config,
    now: float,
    controls: Controls,
    pools: dict[str, Pool],
    supply: _Supply,
    used_nodes: set[str],
) -> list[NodeAction]:
    """Step 4: resume the drained nodes that got work, drain idle nodes past
    their timeout (or whose resource is gone or drained), delete drained
    nodes with no job left, forget WLM nodes with no instance behind them."""
    resumable, idle_since = supply.resumable, supply.idle_since
    actions = [
        NodeAction("resume", name, resumable[name].resource, "needed by pending jobs or min")
        for name in sorted(resumable)
        if name in used_nodes
    ]
    if controls.frozen:
        return actions
    DRAINING, IDLE = NodeState.DRAINING, NodeState.IDLE
    by_name = {r.name: r for r in config.resources}
    remaining = {name: p.count for name, p in pools.items()}
    retiring = sorted(supply.retiring, key=lambda n: (n.resource, -n.created, n.name))
    keep = controls.held_nodes | used_nodes
    deleting = {
        n.name
        for n in retiring
        if n.state is DRAINING and n.drained_by_us and not n.running_jobs and n.name not in keep
    }
    # Nodes deleted in this pass no longer count towards min: without
    # this, the pass that deletes drained nodes would also drain the
    # node min keeps, and resume it in the next one.
    for node in retiring:
        if node.name in deleting and node.resource in remaining:
            remaining[node.resource] -= 1
    t = config.timers
    for node in retiring:
        if node.name in keep or node.running_jobs:
            continue
        res = by_name.get(node.resource)
        if node.state is IDLE:
            why = idle_retirement(node, res, controls, now - idle_since.get(node.name, now), remaining, t)
            if why is None:
                continue
            actions.append(NodeAction("drain", node.name, node.resource, why))
            if node.resource in remaining:
                remaining[node.resource] -= 1
        elif node.name in deleting:
            actions.append(NodeAction("delete", node.name, node.resource, "drained and empty"))

    for name in observed.stale_wlm_nodes:
        actions.append(NodeAction("forget", name, None, "WLM node has no instance behind it"))
    return actions
