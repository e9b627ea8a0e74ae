# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scaling policy: a pure function ``decide(observed, config, now, timers)``.

Private to the dcaas.cluster collection. No I/O, no clock, no globals: the
same inputs always give the same plan, which is what lets the scaling module's
check mode, the daemon, the simulator and the tests share it.

How a plan is made, in order:

1. Supply. Every managed node that can still take work counts with its free
   cores and memory: booting nodes (never launch twice for the same demand),
   idle nodes, and nodes the engine drained while idle (they are resumed
   instead of launching new ones). Nodes past their boot timeout do not count.
2. Demand. Pending jobs that capacity can help (``Job.eligible``), in the
   WLM's priority order, all of them (not a first-N window). Each job's nodes
   are packed first-fit onto the supply of the resources it may use: its
   tenant's own pools by priority, then the shared pools by priority. What
   does not fit is packed onto new nodes of the first resource that can take
   the whole job at once, within max, cloud headroom, back-off and the
   per-cycle launch budget. The first job for which that fails keeps the
   nodes it found and grows towards its width as far as room allows, so
   that smaller jobs behind it cannot take its place for ever. Jobs no
   resource could ever fit are reported.
3. Floor. Resources below ``min`` get launches up to it.
4. Retirement. Idle nodes past the idle timeout are drained (not below min,
   never held nodes), drained-by-us nodes with no job left are deleted, nodes
   that do not boot in time or stay down too long are deleted (their demand
   is relaunched next cycle). A node that runs a job is never deleted.

That is the plan for dynamic nodes (``wlm.nodes: dynamic``), where the WLM
knows only the workers that exist. For cloud nodes, where it knows every
node while it is off, ``decide_cloud_nodes`` makes the plan instead (see
there). ``next_due`` says when the plan's next clock runs out, so that the
daemon can make its next pass then.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field, replace

from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config, TimerConfig
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Backoff,
    Controls,
    Job,
    Launch,
    Node,
    NodeAction,
    NodeState,
    Observed,
    Plan,
    Resource,
    Timers,
    Unfit,
)


@dataclass
class _Pool:
    """Planning state of one resource during a decide() call."""

    resource: Resource
    count: int = 0  # managed nodes that exist and stay
    headroom: int | None = None  # new nodes the cloud can still take
    usable: bool = True  # launches allowed (not drained, frozen, backing off)
    planned: int = 0  # launches fixed by earlier rounds
    launch: int = 0  # launches added in the current round
    floor: int = 0  # of the planned launches, those made for min
    out_of_service: int = 0  # drained by an admin: counted against max, not min
    jobs: list[str] = field(default_factory=list)

    def room(self) -> int:
        if not self.usable:
            return 0
        new = self.planned + self.launch
        room = self.resource.max - self.count - new
        if self.headroom is not None:
            room = min(room, self.headroom - new)
        return max(0, room)


def _fits_flavor(job: Job, res: Resource) -> bool:
    return job.cores <= res.cores and job.memory_mb <= res.memory_mb


def _allowed(job: Job, res: Resource) -> bool:
    if res.accounts and job.account not in res.accounts:
        return False
    if res.partitions and job.partitions and not set(job.partitions) & set(res.partitions):
        return False
    return not job.features or job.features <= {*naming.worker_features(res.name, res.features)}


def _order_key(res: Resource) -> tuple[int, str]:
    return (res.priority, res.name)


def candidates(job: Job, resources: list[Resource]) -> list[Resource]:
    """Resources a job may run on, in the order they are tried.

    The tenant's own pools (those that list the job's account) come first,
    then the shared pools; within each group by priority, then name.
    """
    own = sorted((r for r in resources if r.accounts and _allowed(job, r)), key=_order_key)
    shared = sorted((r for r in resources if not r.accounts and _allowed(job, r)), key=_order_key)
    return own + shared


def why_unfit(job: Job, resources: list[Resource]) -> str:
    allowed = [r for r in resources if _allowed(job, r)]
    if not allowed:
        return (
            f"no resource accepts account={job.account!r} partitions={list(job.partitions)} "
            f"features={sorted(job.features)}"
        )
    fitting = [r for r in allowed if _fits_flavor(job, r)]
    if not fitting:
        big = max(allowed, key=lambda r: (r.cores, r.memory_mb))
        return (
            f"needs {job.cores} cores and {job.memory_mb} MB per node; the largest allowed "
            f"resource {big.name!r} (flavor {big.flavor}) has {big.cores} cores and {big.memory_mb} MB"
        )
    most = max(fitting, key=lambda r: r.max)
    return f"needs {job.nodes} nodes at once; the largest allowed resource {most.name!r} has max={most.max}"


def _shape(job: Job) -> tuple:
    return (job.cores, job.memory_mb, job.nodes, job.account, job.partitions, job.features)


def _pack(
    jobs: tuple[Job, ...],
    resources: list[Resource],
    pools: dict[str, _Pool],
    bins: list[list],
    budget_left: int,
) -> tuple[list[Unfit], set[str]]:
    """First-fit every eligible pending job onto ``bins``, launching where none fit.

    ``bins`` are ``[free cores, free memory, node name or None, resource]`` in
    creation order, oldest first; nodes launched here are appended. Scanning
    one list in creation order, whatever the resource, is what makes the plan
    reproducible once its launches exist as booting nodes. Returns the unfit
    jobs and the names of existing nodes that received work.

    The first job that cannot be placed in full (its missing nodes do not
    fit within max, headroom, back-off or the launch budget) keeps the nodes
    it found and launches towards its width as far as room and budget allow.
    Otherwise later, smaller jobs would take that room and the nodes it
    found, and a job wider than the free room would wait for as long as
    smaller ones keep coming: the WLM reserves nodes only among those that
    exist (Slurm dynamic nodes). Once enough nodes exist, the WLM's own
    reservation protects it. The price: what it keeps idles until it starts.
    """
    unfit: list[Unfit] = []
    used: set[str] = set()
    launched = 0
    first_launch_free = budget_left >= 0 and all(p.planned == 0 for p in pools.values())
    cands_cache: dict[tuple, tuple[frozenset[str], list[_Pool]] | str] = {}
    # Bins only shrink, so a shape's first fitting bin only moves right: each
    # shape's scan resumes where it last found room. Shapes that found no
    # place at all are done for this round (room and budget only shrink).
    resume_at: dict[tuple, int] = {}
    dead: set[tuple] = set()
    blocked = False  # the first job that could not be placed in full was seen
    for job in jobs:
        if not job.pending or not job.eligible:
            continue
        shape = _shape(job)
        cands = cands_cache.get(shape)
        if cands is None:
            allowed = [pools[r.name] for r in candidates(job, resources) if _fits_flavor(job, r) and job.nodes <= r.max]
            names = frozenset(p.resource.name for p in allowed)
            cands = (names, allowed) if allowed else why_unfit(job, resources)
            cands_cache[shape] = cands
        if isinstance(cands, str):
            unfit.append(Unfit(job.id, cands))
            continue
        if shape in dead:
            continue
        names, allowed = cands
        found: list[list] = []
        first = None
        for idx in range(resume_at.get(shape, 0), len(bins)):
            b = bins[idx]
            if b[0] >= job.cores and b[1] >= job.memory_mb and b[3] in names:
                if first is None:
                    first = idx
                found.append(b)  # one node of the job per bin
                if len(found) == job.nodes:
                    break
        resume_at[shape] = first if first is not None else len(bins)
        left = job.nodes - len(found)
        target = None
        grow = 0
        if left:
            # New nodes for one job come from one resource, all in one step.
            # Only the first launch of a cycle may exceed the budget, else a
            # job wider than the budget would never start.
            budget = left if first_launch_free and launched == 0 else max(0, budget_left - launched)
            target = next((p for p in allowed if left <= p.room()), None) if left <= budget else None
            if target is None:
                dead.add(shape)
                if blocked:
                    continue
                blocked = True
                # It keeps what it found and grows where room is largest.
                target = max(allowed, key=lambda p: p.room())
                grow = min(target.room(), budget)
            else:
                grow = left
        for b in found:
            b[0] -= job.cores
            b[1] -= job.memory_mb
            if b[2] is not None:
                used.add(b[2])
        if grow:
            res = target.resource
            bins.extend([res.cores - job.cores, res.memory_mb - job.memory_mb, None, res.name] for _node in range(grow))
            target.launch += grow
            target.jobs.append(job.id)
            launched += grow
    return unfit, used


def _idle_retirement(
    node: Node, res: Resource | None, controls: Controls, idle_for: float, remaining: dict[str, int], t: TimerConfig
) -> str | None:
    """Why an idle node goes (drained, or powered down), or None to keep it:
    its resource is gone or drained by the admin, or it idled past the
    timeout while its resource stays above min."""
    if res is None:
        return "resource no longer configured"
    if node.resource in controls.drained_resources:
        return "resource drained by admin"
    if idle_for >= t.idle_timeout and remaining[node.resource] > res.min:
        return f"idle for {idle_for:.0f}s"
    return None


def _idle_since(node: Node, kept: float | None, now: float, interval: float) -> float:
    """When the idle clock of an idle node started. ``kept``: the clock from
    earlier passes. The WLM's last-busy time, when it says, restarts a kept
    clock (a job ran between two passes) and starts a new one, at most one
    interval back (so a restarted engine, or a WLM that reports an old time,
    never drains at once); without it, a new clock starts now."""
    last = node.last_busy
    if last is None:
        return now if kept is None else kept
    if kept is None:
        return min(now, max(last, now - interval))
    return kept if last <= kept else min(now, last)


def next_due(observed: Observed, config: Config, plan: Plan, now: float) -> float:
    """When a clock of this plan runs out next: an idle, down or booting
    node's timeout, the end of a back-off, a pre-warm (cloud nodes); or one
    second from now when the plan drains nodes (the next pass deletes
    them). Clocks that ran out without an action (a node kept for min, or
    held) do not count. ``inf`` if no clock runs. The daemon sleeps until
    then or the end of the interval, whichever comes first, but at least
    ``timers.watch`` seconds (with the watch off, the interval); so does
    the simulator."""
    t = config.timers
    times = [b.until for b in plan.timers.backoff.values()]
    times += [since + t.idle_timeout for since in plan.timers.idle_since.values()]
    times += [since + t.down_timeout for since in plan.timers.down_since.values()]
    starting = NodeState.STARTING
    # boot_timeout is a strict ">" in the policy: just after.
    times += [n.created + t.boot_timeout + 0.001 for n in observed.nodes if n.state is starting]
    if config.wlm_nodes == "cloud":
        times += [j.start_time - t.prewarm for j in observed.jobs if j.start_time is not None]
        if t.quiet > 0:
            # A resource turns quiet; an idle node of a quiet one is powered
            # down once it has idled `prewarm` seconds. With several
            # resources, the clock of a node whose own resource is still
            # active only brings a pass that does nothing.
            last = plan.timers.last_submit
            quiet_at = min((last.get(r.name, -_INF) + t.quiet for r in config.resources), default=_INF)
            times += [since + t.quiet for since in last.values()]
            if quiet_at <= now + t.prewarm:  # idle clocks never started after now
                times += [s + t.prewarm for s in plan.timers.idle_since.values() if s + t.prewarm >= quiet_at]
    due = min((x for x in times if x > now), default=float("inf"))
    if any(a.action == "drain" for a in plan.actions):
        due = min(due, now + 1)
    return due


# States of a node that registered with the WLM and works.
_JOINED = frozenset({NodeState.IDLE, NodeState.BUSY, NodeState.DRAINING})
# Actions that take a node out of service or away.
_DESTRUCTIVE = frozenset({"drain", "delete", "forget", "power_down"})


def _busy_targets(plan: Plan, observed: Observed) -> set[str]:
    """Nodes a destructive action of ``plan`` names although a job runs
    there. A cloud node that did not boot, or is down, may be powered down:
    the jobs the WLM placed there have not started (they wait for it), and
    powering it down sends them back to the queue."""
    targets = {a.node: a.action for a in plan.actions if a.action in _DESTRUCTIVE}
    if not targets:
        return set()
    busy = {name for job in observed.jobs if job.state == "running" for name in job.node_names if name in targets}
    placed_only = (NodeState.STARTING, NodeState.DOWN)
    for n in observed.nodes:
        if n.name in targets and n.running_jobs:
            busy.add(n.name)
        if n.name in busy and targets[n.name] == "power_down" and n.state in placed_only:
            busy.discard(n.name)
    return busy


def _pools(
    observed: Observed, config: Config, now: float, timers: Timers, controls: Controls, notes: list[str]
) -> tuple[dict[str, Backoff], dict[str, _Pool]]:
    """The back-offs to keep and a planning pool per resource; notes say
    what stops launches (frozen, back-off)."""
    backoff = _kept_backoffs(observed, config, now, timers) if timers.backoff else {}
    pools: dict[str, _Pool] = {}
    for res in config.resources:
        hr = observed.headroom.get(res.name)
        b = backoff.get(res.name)
        pools[res.name] = _Pool(
            resource=res,
            headroom=hr.nodes_for(res.cores, res.memory_mb) if hr is not None else None,
            usable=not controls.frozen and res.name not in controls.drained_resources and (b is None or b.until <= now),
        )
    if controls.frozen:
        notes.append("frozen: no launch, drain or delete")
    for name, b in sorted(backoff.items()):
        if b.until > now:
            why = f"{b.failures} failure(s): {b.last_error}"
            notes.append(f"resource {name!r} backs off until {b.until:.0f} after {why}")
    return backoff, pools


def _kept_backoffs(observed: Observed, config: Config, now: float, timers: Timers) -> dict[str, Backoff]:
    """Back-offs in force, and those that ended but may still count.

    A back-off that ended is kept, so that the next failure of its resource
    doubles the delay instead of starting again from ``backoff_initial``
    (a resource that always fails, as with NoValidHost, then costs one
    instance per back-off step, not one per pass). It is forgotten once a
    node launched after it ended has joined the WLM (the resource works
    again; a second of slack for clouds that round creation times), or when
    no failure came for ``backoff_max`` after it ended.
    """
    kept = {}
    ended = set()
    for name, b in timers.backoff.items():
        if config.resource(name) is None:
            continue
        if b.until <= now:
            if now - b.until >= config.timers.backoff_max:
                continue
            ended.add(name)
        kept[name] = b
    for node in observed.nodes:
        if not ended:
            break
        joined = node.resource in ended and node.in_wlm and node.state in _JOINED
        if joined and node.created + 1 >= kept[node.resource].until:
            del kept[node.resource]
            ended.discard(node.resource)
    return kept


def decide(
    observed: Observed,
    config: Config,
    now: float,
    timers: Timers,
    controls: Controls | None = None,
) -> Plan:
    """Return the plan for one reconcile cycle. Pure: no I/O, no clock.

    Whatever rule plans it, no node that a running job names is drained,
    deleted or forgotten. Protected mode: while what was read contradicts
    itself (``observed.contradictions``), every node is held, so nothing is
    drained, deleted, forgotten or powered down; launches for what waits
    still happen. Holding, rather than dropping actions from a finished
    plan, keeps the plan's counts true: a node kept is not replaced.
    """
    controls = controls or Controls()
    make = decide_cloud_nodes if config.wlm_nodes == "cloud" else _decide_dynamic
    notes: list[str] = []
    if observed.contradictions:
        controls = replace(controls, held_nodes=controls.held_nodes | {n.name for n in observed.nodes})
        notes.append("protected mode, nothing drained or deleted: " + "; ".join(observed.contradictions))
    plan = make(observed, config, now, timers, controls)
    busy = _busy_targets(plan, observed)
    if busy:
        # A node record that does not show the job a running job record
        # places there (a partial answer): hold it and plan again.
        notes.append(f"node(s) {', '.join(sorted(busy))} kept: a running job names them")
        plan = make(observed, config, now, timers, replace(controls, held_nodes=controls.held_nodes | busy))
    kept = tuple(
        a for a in plan.actions if a.action not in _DESTRUCTIVE or not (observed.contradictions or a.node in busy)
    )
    if not notes and len(kept) == len(plan.actions):
        return plan
    return replace(plan, actions=kept, notes=(*plan.notes, *notes))


def _decide_dynamic(observed: Observed, config: Config, now: float, timers: Timers, controls: Controls) -> Plan:
    """The plan for dynamic nodes (see the module's docstring)."""
    frozen = controls.frozen
    resources = list(config.resources)
    by_name = {r.name: r for r in resources}
    order = {r.name: _order_key(r) for r in resources}
    t = config.timers
    notes: list[str] = []
    actions: list[NodeAction] = []
    backoff, pools = _pools(observed, config, now, timers, controls, notes)

    # --- 1. supply, and nodes that failed -------------------------------
    # One pass over the nodes (a busy cluster has thousands, and the daemon
    # and the simulator call this often). Enum members are looked up once
    # (an attribute of an Enum class is a slow lookup), busy nodes are only
    # counted, and the idle and draining nodes retirement looks at are kept.
    BUSY, IDLE, DRAINING, DOWN, STARTING, DELETING = (
        NodeState.BUSY,
        NodeState.IDLE,
        NodeState.DRAINING,
        NodeState.DOWN,
        NodeState.STARTING,
        NodeState.DELETING,
    )
    held_nodes = controls.held_nodes
    drained_resources = controls.drained_resources
    idle_since: dict[str, float] = {}
    down_since: dict[str, float] = {}
    resumable: dict[str, Node] = {}
    supply: list[tuple] = []
    retiring: list[Node] = []
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
                    since = _idle_since(node, kept, now, t.interval)
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
    base_bins = [s[3] for s in supply]

    # --- 2. demand and 3. floor, to a fixed point -------------------------
    # Each round packs the queue onto what exists plus what earlier rounds
    # planned, as booting nodes in launch order: exactly what the next cycle
    # will observe. A round that adds nothing proves the next cycle will not
    # launch again for the same demand.
    budget = config.limits.max_launches_per_cycle
    ordered_pools = sorted(pools.values(), key=lambda p: _order_key(p.resource))
    unfit: list[Unfit] = []
    used_nodes: set[str] = set()
    for _round in range(sum(p.resource.max for p in ordered_pools) + 2):
        bins = list(map(list, base_bins))
        for pool in ordered_pools:
            res = pool.resource
            bins.extend([res.cores, res.memory_mb, None, res.name] for _node in range(pool.planned))
            pool.launch = 0
        planned_total = sum(p.planned for p in ordered_pools)
        unfit, used_nodes = _pack(observed.jobs, resources, pools, bins, budget - planned_total)
        for pool in ordered_pools:
            idle_drained = sorted(
                n for n, node in resumable.items() if node.resource == pool.resource.name and n not in used_nodes
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

    launches = []
    for pool in ordered_pools:
        if not pool.planned:
            continue
        if pool.floor:
            notes.append(f"resource {pool.resource.name!r} below min={pool.resource.min}: launching {pool.floor}")
        why = [f"{len(pool.jobs)} pending job(s)"] if pool.jobs else []
        why += [f"min={pool.resource.min}"] if pool.floor else []
        launches.append(Launch(pool.resource.name, pool.planned, " and ".join(why), tuple(pool.jobs[:50])))

    # --- 4. retirement ---------------------------------------------------
    for name in sorted(resumable):
        if name in used_nodes:
            actions.append(NodeAction("resume", name, resumable[name].resource, "needed by pending jobs or min"))

    remaining = {name: p.count for name, p in pools.items()}
    if not frozen:
        # Only idle nodes past their timeout (or whose resource is gone or
        # drained) and draining nodes are ever drained or deleted here.
        retiring.sort(key=lambda n: (n.resource, -n.created, n.name))
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
        for node in retiring:
            if node.name in keep or node.running_jobs:
                continue
            res = by_name.get(node.resource)
            if node.state is IDLE:
                why = _idle_retirement(node, res, controls, now - idle_since.get(node.name, now), remaining, t)
                if why is None:
                    continue
                actions.append(NodeAction("drain", node.name, node.resource, why))
                if node.resource in remaining:
                    remaining[node.resource] -= 1
            elif node.name in deleting:
                actions.append(NodeAction("delete", node.name, node.resource, "drained and empty"))

        for name in observed.stale_wlm_nodes:
            actions.append(NodeAction("forget", name, None, "WLM node has no instance behind it"))

    return Plan(
        launches=tuple(launches),
        actions=tuple(actions),
        unfit=tuple(unfit),
        timers=Timers(idle_since=idle_since, down_since=down_since, backoff=backoff),
        notes=tuple(notes),
    )


# --- cloud nodes (wlm.nodes: cloud) -----------------------------------------


def decide_cloud_nodes(observed: Observed, config: Config, now: float, timers: Timers, controls: Controls) -> Plan:
    """The plan for cloud nodes: the WLM knows every resource's ``max`` nodes,
    places and reserves jobs on them while they are off, and the engine
    powers them up and down. Pure, like ``decide``.

    1. Power up (a launch that names the nodes) every off node the WLM has
       placed a job on, and, ``timers.prewarm`` seconds before a pending
       job's planned start, the off nodes planned for it, so that a job
       whose blockers run to their time limits does not wait for a boot
       too. Planned starts come from the WLM (Slurm: squeue --start).
    2. Power down an idle node after ``idle_timeout``, or as soon as it
       becomes idle when the WLM has planned it for a job that starts more
       than ``idle_timeout + prewarm`` from now: it would be powered down
       before that start anyway, after idling ``idle_timeout``. Pre-warm
       brings it back.
    3. Nodes that do not boot in time, or stay down, are powered down
       (their jobs go back to the queue; the WLM places them again).
    4. ``min`` nodes per resource stay up.
    5. Spare: while jobs a resource could run keep coming (one was submitted
       less than ``timers.quiet`` ago) and none waits unplaced, ``spare``
       of its nodes are kept ready (idle, or booting with no job): off
       nodes are powered up to make up the number, and the last idle ones
       stay past the idle timeout. The next short job then starts at once
       instead of waiting for a boot.
    6. Quiet: once no such job came for ``timers.quiet`` seconds, an idle
       node is powered down after ``prewarm`` seconds (about one boot: the
       break-even of keeping it against booting it again) instead of
       ``idle_timeout``: a node freed when nothing arrives is rarely used
       again soon. The latest submit time per resource is kept in the
       timers (``last_submit``), since jobs that ended drop out of the
       WLM's view.

    The launch budget limits pre-warm, ``min`` and the spare only: a node
    the WLM has placed a job on is powered up at once, as the WLM's own
    power saving would. Back-off, frozen and drained resources stop every
    power-up.
    """
    frozen = controls.frozen
    held = controls.held_nodes
    t = config.timers
    notes: list[str] = []
    actions: list[NodeAction] = []
    backoff, pools = _pools(observed, config, now, timers, controls, notes)
    off_state, idle_state, down_state, starting_state, deleting_state, busy_state, draining_state = (
        NodeState.OFF,
        NodeState.IDLE,
        NodeState.DOWN,
        NodeState.STARTING,
        NodeState.DELETING,
        NodeState.BUSY,
        NodeState.DRAINING,
    )

    idle_since: dict[str, float] = {}
    down_since: dict[str, float] = {}
    off: dict[str, Node] = {}
    idle: list[Node] = []
    ready = dict.fromkeys(pools, 0)  # idle nodes, and booting ones no job waits for
    placed: set[str] = set()  # pending jobs the WLM has placed on nodes that are off or booting
    placed_off: list[str] = []  # off nodes the WLM has placed a job on (the others need no look)
    counted: list[str] = []  # the resource of each node up or booting: they count towards min
    # One look at every node, every pass: the common cases come first.
    for node in observed.nodes:
        state = node.state
        if state is busy_state or state is draining_state:
            counted.append(node.resource)
            continue
        if state is off_state:
            off[node.name] = node
            if node.jobs:
                placed_off.append(node.name)
            continue
        if state is deleting_state:
            continue
        name = node.name
        going = False
        if state is down_state:
            since = down_since[name] = timers.down_since.get(name, now)
            if (not node.in_wlm or now - since >= t.down_timeout) and name not in held and not frozen:
                actions.append(NodeAction("power_down", name, node.resource, f"{node.reason or 'down'}; powering down"))
                going = True
        elif state is starting_state:
            if now - node.created > t.boot_timeout and name not in held and not frozen:
                why = f"did not join the WLM within boot_timeout={t.boot_timeout}s; powering down"
                actions.append(NodeAction("power_down", name, node.resource, why))
                going = True
            elif node.jobs:
                placed.update(node.jobs)
            elif node.resource in ready:
                ready[node.resource] += 1
        elif state is idle_state and not node.running_jobs:
            idle_since[name] = _idle_since(node, timers.idle_since.get(name), now, t.interval)
            idle.append(node)
        if not going:
            counted.append(node.resource)
    tally = Counter(counted)
    for name, pool in pools.items():
        pool.count += tally[name]

    # --- 1. power up ----------------------------------------------------
    power_up: dict[str, list[str]] = {name: [] for name in pools}
    jobs_for: dict[str, list[str]] = {name: [] for name in pools}
    blocked: dict[str, int] = {}

    def take(node: Node) -> bool:
        pool = pools.get(node.resource)
        if pool is None:
            return False
        if pool.room() < 1:
            blocked[node.resource] = blocked.get(node.resource, 0) + 1
            return False
        pool.launch += 1
        power_up[node.resource].append(node.name)
        return True

    for name in sorted(set(placed_off)):
        node = off[name]
        if node.jobs:
            placed.update(node.jobs)
            if take(node):
                jobs_for[node.resource].extend(node.jobs)
    for node in idle:
        if node.resource in ready:
            ready[node.resource] += 1
    open_names = {name for name, pool in pools.items() if pool.usable and pool.room() > 0}
    last_submit, waiting = _arrivals(observed, config, timers, placed, open_names)
    # A resource is active while jobs for it keep coming: it keeps `spare`
    # nodes ready then (unless jobs wait for nodes anyway); once none came
    # for `quiet` seconds, its idle nodes go.
    active = {name: t.quiet > 0 and now - last_submit.get(name, -_INF) < t.quiet for name in pools}
    # Where idle nodes are kept as the spare, and where they go after `prewarm`.
    keep_spare = {
        name: pool.resource.spare > 0 and name not in waiting and name not in controls.drained_resources
        for name, pool in pools.items()
        if active[name]
    }
    quiet = {name for name in pools if t.quiet > 0 and not active[name]}
    budget = config.limits.max_launches_per_cycle
    planned_at: dict[str, tuple[float, str]] = {}  # node -> (earliest planned start, job)
    planned_on: dict[str, tuple[str, ...]] = {}  # job -> its planned nodes
    for job in observed.jobs:
        if not job.pending or not job.eligible or job.start_time is None:
            continue
        planned_on[job.id] = job.planned_nodes
        for name in job.planned_nodes:
            if name not in planned_at or job.start_time < planned_at[name][0]:
                planned_at[name] = (job.start_time, job.id)
        if job.start_time - now > t.prewarm:
            continue
        for name in job.planned_nodes:
            node = off.get(name)
            if node is None or node.jobs or budget <= 0:
                continue
            if take(node):
                del off[name]  # once only, if several jobs plan it
                budget -= 1
                jobs_for[node.resource].append(job.id)

    def take_free(pool: _Pool, count: int) -> int:
        """Power up ``count`` off nodes of the pool that no job waits for,
        lowest names first, within the budget; how many were taken."""
        nonlocal budget
        free = (n for n, node in off.items() if node.resource == pool.resource.name and not node.jobs)
        taken = 0
        for name in heapq.nsmallest(count, free):
            if budget <= 0 or not take(off[name]):
                break
            del off[name]
            budget -= 1
            taken += 1
        return taken

    for pool in pools.values():
        short = pool.resource.min - pool.count - pool.launch
        if short > 0 and pool.usable:
            pool.floor += take_free(pool, short)
    spare_up: dict[str, int] = {}
    for pool in pools.values():
        name = pool.resource.name
        short = pool.resource.spare - ready[name] - pool.floor  # nodes powered up for min are ready too
        if short > 0 and active[name] and name not in waiting and pool.usable:
            spare_up[name] = take_free(pool, short)
    for name, count in sorted(blocked.items()):
        pool = pools[name]
        backing_off = name in backoff and backoff[name].until > now
        why = "backing off" if backing_off else "no room (max or cloud quota)" if pool.usable else "not usable"
        notes.append(f"resource {name!r}: {count} node(s) wait to be powered up: {why}")
    launches = []
    for pool in sorted(pools.values(), key=lambda p: _order_key(p.resource)):
        names = power_up[pool.resource.name]
        if not names:
            continue
        jobs = tuple(dict.fromkeys(jobs_for[pool.resource.name]))
        why = [f"{len(jobs)} job(s) placed or planned"] if jobs else []
        why += [f"min={pool.resource.min}"] if pool.floor else []
        why += [f"spare={pool.resource.spare}"] if spare_up.get(pool.resource.name) else []
        launches.append(Launch(pool.resource.name, len(names), " and ".join(why), jobs[:50], tuple(names)))

    # --- 2. power down --------------------------------------------------
    if not frozen:
        remaining = {name: p.count for name, p in pools.items()}
        by_name: dict[str, Node] | None = None
        spare_left = dict(ready)
        # Newest first, as decide() drains: the oldest nodes stay for min.
        for node in sorted(idle, key=lambda n: (n.resource, -n.created, n.name)):
            if node.name in held:
                continue
            res = config.resource(node.resource)
            idle_for = now - idle_since[node.name]
            # Only a node that has just become idle (its clock started in this
            # pass) is powered down early. One the WLM plans for later, once
            # it has idled a while, may well be used soon (plans only move
            # earlier as jobs end before their limits), and the idle timeout
            # takes it soon anyway.
            newly_idle = idle_since[node.name] != timers.idle_since.get(node.name)
            plan = planned_at.get(node.name)
            why = _idle_retirement(node, res, controls, idle_for, remaining, t)
            early = plan is not None and newly_idle and plan[0] - now > t.idle_timeout + t.prewarm
            if early:
                # A plan is only as fresh as the WLM's last scheduling pass:
                # when no node planned for the job is busy any more, what
                # held it back has ended early and it starts at once.
                if by_name is None:
                    by_name = {n.name: n for n in observed.nodes}
                early = any((m := by_name.get(x)) is not None and m.running_jobs for x in planned_on[plan[1]])
            if why is None and early and remaining[node.resource] > res.min:
                why = f"idle; planned for job {plan[1]} in {plan[0] - now:.0f}s: off until then"
            if plan is None and res is not None:
                if why is not None:
                    if keep_spare.get(node.resource) and spare_left[node.resource] <= res.spare:
                        why = None  # the spare: the last idle nodes stay while jobs keep coming
                elif node.resource in quiet and idle_for >= t.prewarm and remaining[node.resource] > res.min:
                    why = f"idle {idle_for:.0f}s; no job for it submitted in {t.quiet}s"
            if why is None:
                continue
            actions.append(NodeAction("power_down", node.name, node.resource, why))
            if node.resource in remaining:
                remaining[node.resource] -= 1
                spare_left[node.resource] -= 1

    return Plan(
        launches=tuple(launches),
        actions=tuple(actions),
        timers=Timers(idle_since=idle_since, down_since=down_since, backoff=backoff, last_submit=last_submit),
        notes=tuple(notes),
    )


_INF = float("inf")


def _arrivals(
    observed: Observed, config: Config, timers: Timers, placed: set[str], open_names: set[str]
) -> tuple[dict[str, float], set[str]]:
    """(the latest submit time of the jobs each resource is the first choice
    for, among those of ``open_names`` (with room) it may run on, among the
    jobs seen in this pass and before; the resources an eligible pending job
    that the WLM has not placed yet (``placed``) could run on). Jobs are
    routed only when newer than a kept time, or while a resource with a
    spare is not yet known to have such a job, so a pass costs little more
    than one look at every job."""
    resources = list(config.resources)
    last_submit = {r.name: timers.last_submit[r.name] for r in resources if r.name in timers.last_submit}
    oldest = min((last_submit.get(r.name, -_INF) for r in resources), default=_INF)
    unknown = {r.name for r in resources if r.spare > 0}  # spare resources not yet seen waiting
    waiting: set[str] = set()
    routes: dict[tuple, list[str]] = {}
    for job in observed.jobs:
        submit = job.submit_time
        newer = submit is not None and submit > oldest
        pending = bool(unknown) and job.state == "pending" and job.eligible and job.id not in placed
        if not newer and not pending:
            continue
        shape = _shape(job)
        names = routes.get(shape)
        if names is None:
            names = routes[shape] = [
                r.name for r in candidates(job, resources) if _fits_flavor(job, r) and job.nodes <= r.max
            ]
        if pending:
            waiting.update(names)
            unknown.difference_update(names)
        if newer and names:
            # The job counts for one resource: the first it may run on that
            # has room, so that a job several pools accept keeps one spare.
            name = next((n for n in names if n in open_names), names[0])
            if submit > last_submit.get(name, -_INF):
                last_submit[name] = submit
    return last_submit, waiting
