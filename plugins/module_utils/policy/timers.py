# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy's clocks: idle clocks, back-off, and when the next pass is due.

Private to the dcaas.cluster collection. Pure functions: the engine records
failures with them, the policy reads them, and the daemon and the simulator
ask them when to make the next pass.
"""

from __future__ import annotations

from dataclasses import replace

from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Backoff,
    Node,
    NodeState,
    Observed,
    Plan,
    Timers,
)

INF = float("inf")

# States of a node that registered with the WLM and works.
JOINED = frozenset({NodeState.IDLE, NodeState.BUSY, NodeState.DRAINING})


def backoff_after_failure(timers: Timers, resource: str, error: str, now: float, config: Config) -> Timers:
    prev = timers.backoff.get(resource)
    failures = (prev.failures if prev else 0) + 1
    delay = min(config.timers.backoff_initial * 2 ** (failures - 1), config.timers.backoff_max)
    backoff = dict(timers.backoff)
    backoff[resource] = Backoff(until=now + delay, failures=failures, last_error=error[:300])
    return replace(timers, backoff=backoff)


def backoff_failed_boots(config: Config, observed: Observed, timers: Timers, now: float) -> Timers:
    """An instance that failed to boot (NoValidHost, zone full, quota hit
    after the API accepted it) counts as a failed launch of its resource,
    so its replacement goes to the next resource or zone, not into the
    same wall. The failed instance itself is deleted by the same pass.

    Several instances of one resource failing in the same pass count as
    one failure: the back-off doubles per pass that meets failures, not
    per instance, so a burst of boot errors does not shut a resource
    out for the maximum back-off at once. (The simulator calls this too.)"""
    failed: dict[str, list[Node]] = {}
    down = NodeState.DOWN  # a local: this runs over every node, every pass
    for node in [n for n in observed.nodes if n.state is down]:
        if not node.in_wlm and config.resource(node.resource):
            failed.setdefault(node.resource, []).append(node)
    for resource, nodes in sorted(failed.items()):
        first = nodes[0]
        why = f"instance {first.name} failed: {first.reason or 'unknown fault'}"
        if len(nodes) > 1:
            why += f" (and {len(nodes) - 1} more in this pass)"
        timers = backoff_after_failure(timers, resource, why, now, config)
    return timers


def kept_backoffs(observed: Observed, config: Config, now: float, timers: Timers) -> dict[str, Backoff]:
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
        joined = node.resource in ended and node.in_wlm and node.state in JOINED
        if joined and node.created + 1 >= kept[node.resource].until:
            del kept[node.resource]
            ended.discard(node.resource)
    return kept


def idle_started(node: Node, kept: float | None, now: float, interval: float) -> float:
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
            quiet_at = min((last.get(r.name, -INF) + t.quiet for r in config.resources), default=INF)
            times += [since + t.quiet for since in last.values()]
            if quiet_at <= now + t.prewarm:  # idle clocks never started after now
                times += [s + t.prewarm for s in plan.timers.idle_since.values() if s + t.prewarm >= quiet_at]
    due = min((x for x in times if x > now), default=float("inf"))
    if any(a.action == "drain" for a in plan.actions):
        due = min(due, now + 1)
    return due


def next_pass_at(started: float, interval: float, watch: float, due: float = float("inf")) -> float:
    """When the pass after one that started at ``started`` is due: after
    ``interval``, or earlier when a clock of the plan runs out (``due``,
    ``next_due``), but no sooner than the watch's next look; with the
    watch off, only after the interval."""
    until = started + interval
    if watch > 0:
        until = min(until, max(due, started + watch))
    return until
