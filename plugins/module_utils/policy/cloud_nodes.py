# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan for cloud nodes (``wlm.nodes: cloud``): the WLM knows every node
while it is off, and the engine powers nodes up and down.

Private to the dcaas.cluster collection.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Backoff,
    Controls,
    Launch,
    Node,
    NodeAction,
    NodeState,
    Observed,
    Plan,
    Timers,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.packing import able, shape
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.pools import (
    Pool,
    idle_retirement,
    make_pools,
    order_key,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.timers import INF, idle_started


def decide_cloud_nodes(observed: Observed, config: Config, now: float, timers: Timers, controls: Controls) -> Plan:
    """The plan for cloud nodes: the WLM knows every resource's ``max`` nodes,
    places and reserves jobs on them while they are off, and the engine
    powers them up and down. Pure, like ``decide``.

    1. Power up (a launch that names the nodes) every off node the WLM has
       placed a job on, and, ``timers.prewarm`` seconds before a pending
       job's planned start, the off nodes planned for it, so that a job
       whose blockers run to their time limits does not wait for a boot
       too. Planned starts come from the WLM (``Job.start_time``).
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
    t = config.timers
    notes: list[str] = []
    backoff, pools = make_pools(observed, config, now, timers, controls, notes)
    look = _look(observed, config, now, timers, controls, pools)
    ready = look.ready

    # --- 1. power up ----------------------------------------------------
    up = _PowerUp(pools, look.off, config.limits.max_launches_per_cycle)
    up.placed(look.placed_off, look.placed)
    for node in look.idle:
        if node.resource in ready:
            ready[node.resource] += 1
    open_names = {name for name, pool in pools.items() if pool.usable and pool.room() > 0}
    last_submit, waiting = _arrivals(observed, config, timers, look.placed, open_names)
    # A resource is active while jobs for it keep coming: it keeps `spare`
    # nodes ready then (unless jobs wait for nodes anyway); once none came
    # for `quiet` seconds, its idle nodes go.
    active = {name: t.quiet > 0 and now - last_submit.get(name, -INF) < t.quiet for name in pools}
    # Where idle nodes are kept as the spare, and where they go after `prewarm`.
    keep_spare = {
        name: pool.resource.spare > 0 and name not in waiting and name not in controls.drained_resources
        for name, pool in pools.items()
        if active[name]
    }
    quiet = {name for name in pools if t.quiet > 0 and not active[name]}
    planned_at, planned_on = up.prewarm(observed, now, t.prewarm)
    up.floor()
    up.spare(ready, active, waiting)
    notes += up.notes(backoff, now)

    # --- 2. power down --------------------------------------------------
    actions = look.actions
    if not controls.frozen:
        actions += _power_down(
            observed, config, now, timers, controls, pools, look, planned_at, planned_on, keep_spare, quiet
        )

    return Plan(
        launches=tuple(up.launches()),
        actions=tuple(actions),
        timers=Timers(idle_since=look.idle_since, down_since=look.down_since, backoff=backoff, last_submit=last_submit),
        notes=tuple(notes),
    )


@dataclass
class _Look:
    """What one look at every node found."""

    actions: list[NodeAction] = field(default_factory=list)  # power-downs of nodes that failed
    idle_since: dict[str, float] = field(default_factory=dict)
    down_since: dict[str, float] = field(default_factory=dict)
    off: dict[str, Node] = field(default_factory=dict)
    idle: list[Node] = field(default_factory=list)
    ready: dict[str, int] = field(default_factory=dict)  # idle nodes, and booting ones no job waits for
    placed: set[str] = field(default_factory=set)  # pending jobs the WLM has placed on nodes off or booting
    placed_off: list[str] = field(default_factory=list)  # off nodes the WLM has placed a job on


def _look(
    observed: Observed, config: Config, now: float, timers: Timers, controls: Controls, pools: dict[str, Pool]
) -> _Look:
    """One look at every node, every pass: the common cases come first.
    Counts the nodes up or booting towards their pool's min; powers down
    those that did not boot in time or stayed down."""
    t = config.timers
    frozen = controls.frozen
    held = controls.held_nodes
    off_state, idle_state, down_state, starting_state, deleting_state, busy_state, draining_state = (
        NodeState.OFF,
        NodeState.IDLE,
        NodeState.DOWN,
        NodeState.STARTING,
        NodeState.DELETING,
        NodeState.BUSY,
        NodeState.DRAINING,
    )
    out = _Look(ready=dict.fromkeys(pools, 0))
    # Locals, not attributes, in the loop over every node.
    actions, idle_since, down_since, off = out.actions, out.idle_since, out.down_since, out.off
    idle, ready, placed, placed_off = out.idle, out.ready, out.placed, out.placed_off
    counted: list[str] = []  # the resource of each node up or booting: they count towards min
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
            idle_since[name] = idle_started(node, timers.idle_since.get(name), now, t.interval)
            idle.append(node)
        if not going:
            counted.append(node.resource)
    tally = Counter(counted)
    for name, pool in pools.items():
        pool.count += tally[name]
    return out


class _PowerUp:
    """The off nodes chosen to power up, per resource, within each pool's
    room and the launch budget; and why."""

    def __init__(self, pools: dict[str, Pool], off: dict[str, Node], budget: int):
        self.pools = pools
        self.off = off  # off nodes not taken yet (those a job is placed on stay, and are never free)
        self.budget = budget
        self.names: dict[str, list[str]] = {name: [] for name in pools}
        self.jobs_for: dict[str, list[str]] = {name: [] for name in pools}
        self.blocked: dict[str, int] = {}  # resource -> nodes that wait for room
        self.spare_up: dict[str, int] = {}

    def take(self, node: Node) -> bool:
        pool = self.pools.get(node.resource)
        if pool is None:
            return False
        if pool.room() < 1:
            self.blocked[node.resource] = self.blocked.get(node.resource, 0) + 1
            return False
        pool.launch += 1
        self.names[node.resource].append(node.name)
        return True

    def take_free(self, pool: Pool, count: int) -> int:
        """Power up ``count`` off nodes of the pool that no job waits for,
        lowest names first, within the budget; how many were taken."""
        off = self.off
        free = (n for n, node in off.items() if node.resource == pool.resource.name and not node.jobs)
        taken = 0
        for name in heapq.nsmallest(count, free):
            if self.budget <= 0 or not self.take(off[name]):
                break
            del off[name]
            self.budget -= 1
            taken += 1
        return taken

    def placed(self, placed_off: list[str], placed: set[str]) -> None:
        """Every off node the WLM has placed a job on, outside the budget."""
        for name in sorted(set(placed_off)):
            node = self.off[name]
            if node.jobs:
                placed.update(node.jobs)
                if self.take(node):
                    self.jobs_for[node.resource].extend(node.jobs)

    def prewarm(
        self, observed: Observed, now: float, prewarm: float
    ) -> tuple[dict[str, tuple[float, str]], dict[str, tuple[str, ...]]]:
        """The off nodes planned for a job that starts within ``prewarm``.
        Returns, for the power-down step, each node's earliest planned start
        (node -> (start, job)) and each planned job's nodes."""
        off = self.off
        planned_at: dict[str, tuple[float, str]] = {}
        planned_on: dict[str, tuple[str, ...]] = {}
        for job in observed.jobs:
            if not job.pending or not job.eligible or job.start_time is None:
                continue
            planned_on[job.id] = job.planned_nodes
            for name in job.planned_nodes:
                if name not in planned_at or job.start_time < planned_at[name][0]:
                    planned_at[name] = (job.start_time, job.id)
            if job.start_time - now > prewarm:
                continue
            for name in job.planned_nodes:
                node = off.get(name)
                if node is None or node.jobs or self.budget <= 0:
                    continue
                if self.take(node):
                    del off[name]  # once only, if several jobs plan it
                    self.budget -= 1
                    self.jobs_for[node.resource].append(job.id)
        return planned_at, planned_on

    def floor(self) -> None:
        for pool in self.pools.values():
            short = pool.resource.min - pool.count - pool.launch
            if short > 0 and pool.usable:
                pool.floor += self.take_free(pool, short)

    def spare(self, ready: dict[str, int], active: dict[str, bool], waiting: set[str]) -> None:
        for pool in self.pools.values():
            name = pool.resource.name
            short = pool.resource.spare - ready[name] - pool.floor  # nodes powered up for min are ready too
            if short > 0 and active[name] and name not in waiting and pool.usable:
                self.spare_up[name] = self.take_free(pool, short)

    def notes(self, backoff: dict[str, Backoff], now: float) -> list[str]:
        notes = []
        for name, count in sorted(self.blocked.items()):
            pool = self.pools[name]
            backing_off = name in backoff and backoff[name].until > now
            why = "backing off" if backing_off else "no room (max or cloud quota)" if pool.usable else "not usable"
            notes.append(f"resource {name!r}: {count} node(s) wait to be powered up: {why}")
        return notes

    def launches(self) -> list[Launch]:
        launches = []
        for pool in sorted(self.pools.values(), key=lambda p: order_key(p.resource)):
            res = pool.resource
            names = self.names[res.name]
            if not names:
                continue
            jobs = tuple(dict.fromkeys(self.jobs_for[res.name]))
            why = [f"{len(jobs)} job(s) placed or planned"] if jobs else []
            why += [f"min={res.min}"] if pool.floor else []
            why += [f"spare={res.spare}"] if self.spare_up.get(res.name) else []
            launches.append(Launch(res.name, len(names), " and ".join(why), jobs[:50], tuple(names)))
        return launches


def _power_down(
    observed: Observed,
    config: Config,
    now: float,
    timers: Timers,
    controls: Controls,
    pools: dict[str, Pool],
    look: _Look,
    planned_at: dict[str, tuple[float, str]],
    planned_on: dict[str, tuple[str, ...]],
    keep_spare: dict[str, bool],
    quiet: set[str],
) -> list[NodeAction]:
    """Step 2: the idle nodes to power down, newest first, as decide() drains
    (the oldest nodes stay for min)."""
    t = config.timers
    held = controls.held_nodes
    idle_since = look.idle_since
    actions: list[NodeAction] = []
    remaining = {name: p.count for name, p in pools.items()}
    by_name: dict[str, Node] | None = None
    spare_left = dict(look.ready)
    for node in sorted(look.idle, key=lambda n: (n.resource, -n.created, n.name)):
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
        why = idle_retirement(node, res, controls, idle_for, remaining, t)
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
    return actions


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
    oldest = min((last_submit.get(r.name, -INF) for r in resources), default=INF)
    unknown = {r.name for r in resources if r.spare > 0}  # spare resources not yet seen waiting
    waiting: set[str] = set()
    routes: dict[tuple, list[str]] = {}
    for job in observed.jobs:
        submit = job.submit_time
        newer = submit is not None and submit > oldest
        pending = bool(unknown) and job.state == "pending" and job.eligible and job.id not in placed
        if not newer and not pending:
            continue
        key = shape(job)
        names = routes.get(key)
        if names is None:
            names = routes[key] = [r.name for r in able(job, resources)]
        if pending:
            waiting.update(names)
            unknown.difference_update(names)
        if newer and names:
            # The job counts for one resource: the first it may run on that
            # has room, so that a job several pools accept keeps one spare.
            name = next((n for n in names if n in open_names), names[0])
            if submit > last_submit.get(name, -INF):
                last_submit[name] = submit
    return last_submit, waiting
