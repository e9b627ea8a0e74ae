"""The policy for cloud nodes (wlm.nodes: cloud), and next_due for both kinds."""

from __future__ import annotations

from policy_helpers import S, acts, job, node, observed, res

from ansible_collections.dcaas.cluster.plugins.module_utils import config as cfgmod
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Backoff,
    Controls,
    Headroom,
    NodeAction,
    Plan,
    Timers,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.policy import decide, next_due

T0 = 10_000.0


def cloud_cfg(*resources: dict, nodes: str = "cloud", limits: dict | None = None, **timers) -> cfgmod.Config:
    return cfgmod.parse(
        {
            "cluster": "t",
            "wlm": {"nodes": nodes},
            "resources": list(resources) or [res()],
            "timers": timers,
            "limits": limits or {},
        }
    )


def off(name: str, resource: str = "small", **kw):
    """A cloud node the WLM knows while no instance runs."""
    return node(name, resource, S.OFF, instance_id=None, in_wlm=True, **kw)


def plan_for(obs, config=None, now=T0, timers=None, controls=None):
    return decide(obs, config or cloud_cfg(), now, timers or Timers(), controls)


def powered_up(plan) -> dict[str, tuple[str, ...]]:
    return {x.resource: x.names for x in plan.launches}


def test_powers_up_the_off_nodes_the_wlm_placed_jobs_on():
    nodes = [off("t-small-1", jobs=("7",)), off("t-small-2"), off("t-small-3", jobs=("7",))]
    plan = plan_for(observed([job(7, state="running")], nodes))
    assert powered_up(plan) == {"small": ("t-small-1", "t-small-3")}
    assert plan.launches[0].count == 2 and plan.launches[0].jobs == ("7",)


def test_placed_nodes_are_powered_up_beyond_the_launch_budget():
    # The WLM has decided; its own power saving resumes them all at once too.
    nodes = [off(f"t-small-{i}", jobs=("7",)) for i in range(5)]
    plan = plan_for(observed([], nodes), cloud_cfg(limits={"max_launches_per_cycle": 2}))
    assert len(powered_up(plan)["small"]) == 5


def test_pending_jobs_alone_power_nothing_up():
    # Placing jobs is the WLM's business: a pending job with no plan waits.
    plan = plan_for(observed([job(1)], [off("t-small-1")]))
    assert plan.launches == ()


def test_prewarm_powers_up_planned_nodes_a_boot_ahead_of_the_planned_start():
    nodes = [off("t-small-1"), off("t-small-2"), off("t-small-3")]
    planned = job(9, start_time=T0 + 60, planned_nodes=("t-small-1", "t-small-3"))
    plan = plan_for(observed([planned], nodes))
    assert powered_up(plan) == {"small": ("t-small-1", "t-small-3")}
    too_early = job(9, start_time=T0 + 61, planned_nodes=("t-small-1", "t-small-3"))
    assert plan_for(observed([too_early], nodes)).launches == ()
    # prewarm: 0 waits for the start itself.
    assert plan_for(observed([planned], nodes), cloud_cfg(prewarm=0)).launches == ()


def test_prewarm_keeps_to_the_launch_budget_and_skips_nodes_that_are_up():
    nodes = [off(f"t-small-{i}") for i in range(4)] + [node("t-small-9")]
    planned = job(9, start_time=T0, planned_nodes=("t-small-9", "t-small-0", "t-small-1", "t-small-2"))
    plan = plan_for(observed([planned], nodes), cloud_cfg(limits={"max_launches_per_cycle": 2}))
    assert powered_up(plan) == {"small": ("t-small-0", "t-small-1")}


def test_back_off_and_freeze_stop_power_ups_and_say_why():
    nodes = [off("t-small-1", jobs=("7",))]
    backoff = Timers(backoff={"small": Backoff(until=T0 + 30, failures=1, last_error="quota")})
    plan = plan_for(observed([], nodes), timers=backoff)
    assert plan.launches == ()
    assert any("wait to be powered up: backing off" in n for n in plan.notes)
    plan = plan_for(observed([], nodes), controls=Controls(frozen=True))
    assert plan.launches == ()


def test_cloud_headroom_limits_power_ups():
    nodes = [off(f"t-small-{i}", jobs=("7",)) for i in range(3)]
    plan = plan_for(observed([], nodes, headroom={"small": Headroom(instances=2)}))
    assert len(powered_up(plan)["small"]) == 2
    assert any("1 node(s) wait to be powered up: no room" in n for n in plan.notes)


def test_idle_nodes_power_down_after_the_idle_timeout():
    nodes = [node("t-small-1"), node("t-small-2")]
    timers = Timers(idle_since={"t-small-1": T0 - 600, "t-small-2": T0 - 599})
    plan = plan_for(observed([], nodes), timers=timers)
    assert acts(plan) == [("power_down", "t-small-1")]


def test_min_keeps_the_oldest_nodes_up():
    nodes = [node("t-small-1", created=1.0), node("t-small-2", created=2.0)]
    timers = Timers(idle_since={"t-small-1": 0.0, "t-small-2": 0.0})
    plan = plan_for(observed([], nodes), cloud_cfg(res(min=1)), timers=timers)
    assert acts(plan) == [("power_down", "t-small-2")]


def test_min_powers_up_off_nodes():
    nodes = [node("t-small-1"), off("t-small-2"), off("t-small-3"), off("t-small-4")]
    plan = plan_for(observed([], nodes), cloud_cfg(res(min=3)))
    assert powered_up(plan) == {"small": ("t-small-2", "t-small-3")}
    assert "min=3" in plan.launches[0].reason


def test_a_newly_idle_node_planned_for_a_far_start_powers_down_at_once():
    # Job 9 waits for t-small-2, busy until its job's time limit.
    busy = node("t-small-2", state=S.BUSY, jobs=("8",), cores_alloc=4)
    far = job(9, start_time=T0 + 661, planned_nodes=("t-small-1", "t-small-2"))
    plan = plan_for(observed([far], [node("t-small-1"), busy]))
    assert acts(plan) == [("power_down", "t-small-1")]
    assert "planned for job 9 in 661s" in plan.actions[0].reason
    # Starts within idle_timeout + prewarm (660 s): the idle timeout will do.
    near = job(9, start_time=T0 + 660, planned_nodes=("t-small-1", "t-small-2"))
    assert acts(plan_for(observed([near], [node("t-small-1"), busy]))) == []
    # Idle for a while already (the clock runs): left to the idle timeout.
    timers = Timers(idle_since={"t-small-1": T0 - 30})
    assert acts(plan_for(observed([far], [node("t-small-1"), busy]), timers=timers)) == []


def test_a_plan_none_of_whose_nodes_is_busy_is_stale():
    # Job 8 on t-small-2 ended before its time limit; Slurm has not planned
    # job 9 again yet and still says 661 s. Nothing holds job 9 back: it
    # starts at once, so t-small-1 stays up (measured on real Slurm: the
    # stale plan powered down nodes the job was placed on seconds later).
    stale = job(9, start_time=T0 + 661, planned_nodes=("t-small-1", "t-small-2"))
    nodes = [node("t-small-1"), node("t-small-2"), off("t-small-3")]
    assert acts(plan_for(observed([stale], nodes))) == []


def test_held_nodes_and_frozen_clusters_are_not_powered_down():
    timers = Timers(idle_since={"t-small-1": 0.0})
    plan = plan_for(
        observed([], [node("t-small-1")]), timers=timers, controls=Controls(held_nodes=frozenset({"t-small-1"}))
    )
    assert acts(plan) == []
    plan = plan_for(observed([], [node("t-small-1")]), timers=timers, controls=Controls(frozen=True))
    assert acts(plan) == []


def test_busy_nodes_are_never_powered_down():
    far = job(9, start_time=T0 + 5000, planned_nodes=("t-small-1",))
    busy = node("t-small-1", state=S.BUSY, jobs=("3",), cores_alloc=4)
    plan = plan_for(observed([far], [busy]), timers=Timers(idle_since={"t-small-1": 0.0}))
    assert acts(plan) == []


def test_nodes_that_fail_to_boot_or_stay_down_are_powered_down():
    late = node("t-small-1", state=S.STARTING, created=T0 - 601, in_wlm=False)
    failed = node("t-small-2", state=S.DOWN, in_wlm=False, reason="instance ERROR")
    down = node("t-small-3", state=S.DOWN, in_wlm=True)
    plan = plan_for(observed([], [late, failed, down]), timers=Timers(down_since={"t-small-3": T0 - 299}))
    assert acts(plan) == [("power_down", "t-small-1"), ("power_down", "t-small-2")]


def test_dynamic_nodes_ignore_plans():
    # The same world under wlm.nodes: dynamic uses decide()'s packing.
    plan = plan_for(observed([job(1)], []), cloud_cfg(nodes="dynamic"))
    assert [(x.resource, x.count, x.names) for x in plan.launches] == [("small", 1, ())]


# --- next_due ---------------------------------------------------------------


def test_next_due_is_the_earliest_clock_that_has_not_run_out():
    config = cloud_cfg()
    obs = observed([], [node("t-small-1", state=S.STARTING, created=T0 - 100, in_wlm=False)])
    timers = Timers(
        idle_since={"a": T0 - 500, "kept-for-min": T0 - 900},
        backoff={"small": Backoff(until=T0 + 200, failures=1)},
    )
    # idle: T0 + 100; boot timeout: T0 + 500; back-off: T0 + 200.
    assert next_due(obs, config, Plan(timers=timers), T0) == T0 + 100
    assert next_due(observed(), config, Plan(), T0) == float("inf")


def test_next_due_after_a_drain_is_a_second_later():
    plan = Plan(actions=(NodeAction("drain", "a", "small", "idle"),))
    assert next_due(observed(), cloud_cfg(nodes="dynamic"), plan, T0) == T0 + 1


def test_next_due_includes_prewarm_for_cloud_nodes_only():
    planned = job(9, start_time=T0 + 300, planned_nodes=("t-small-1",))
    obs = observed([planned], [off("t-small-1")])
    assert next_due(obs, cloud_cfg(), Plan(), T0) == T0 + 240
    assert next_due(obs, cloud_cfg(nodes="dynamic"), Plan(), T0) == float("inf")
