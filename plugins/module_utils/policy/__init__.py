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

The modules: ``packing`` (where a job may go, first-fit packing), ``pools``
(per-resource planning state, the retirement rule), ``dynamic`` and
``cloud_nodes`` (the two plans), ``timers`` (idle clocks, back-off, when
the next pass is due). The simulator imports the policy from here alone.
"""

from __future__ import annotations

from dataclasses import replace

from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Controls, NodeState, Observed, Plan, Timers
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.cloud_nodes import decide_cloud_nodes
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.dynamic import decide_dynamic
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.packing import candidates, why_unfit
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.timers import (
    backoff_after_failure,
    backoff_failed_boots,
    next_due,
    next_pass_at,
)

__all__ = [
    "backoff_after_failure",
    "backoff_failed_boots",
    "candidates",
    "decide",
    "decide_cloud_nodes",
    "next_due",
    "next_pass_at",
    "why_unfit",
]

# Actions that take a node out of service or away.
_DESTRUCTIVE = frozenset({"drain", "delete", "forget", "power_down"})


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
    make = decide_cloud_nodes if config.wlm_nodes == "cloud" else decide_dynamic
    notes: list[str] = []
    if observed.contradictions:
        controls = replace(controls, held_nodes=controls.held_nodes | {n.name for n in observed.nodes})
        notes.append("protected mode, nothing drained or deleted: " + "; ".join(observed.contradictions))
    plan = make(observed, config, now, timers, controls)
    busy: set[str] = set()
    # A node record that does not show the job a running job record places
    # there (a partial answer): hold it and plan again. The new plan may
    # pick another such node in its place (a surplus drained elsewhere), so
    # until none is left; each round holds one more node at least.
    found = _busy_targets(plan, observed)
    while found - busy:
        busy |= found
        plan = make(observed, config, now, timers, replace(controls, held_nodes=controls.held_nodes | busy))
        found = _busy_targets(plan, observed)
    busy |= found
    if busy:
        notes.append(f"node(s) {', '.join(sorted(busy))} kept: a running job names them")
    kept = tuple(
        a for a in plan.actions if a.action not in _DESTRUCTIVE or not (observed.contradictions or a.node in busy)
    )
    if not notes and len(kept) == len(plan.actions):
        return plan
    return replace(plan, actions=kept, notes=(*plan.notes, *notes))


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
