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
    """Without the spare and the quiet rule unless timers.quiet is given, so
    that each test sees the rule it is about alone."""
    timers.setdefault("quiet", 0)
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


# --- the spare and quiet resources --------------------------------------------


def recent(jid, submitted=T0 - 100, **kw):
    """A job submitted shortly before T0 (running unless said otherwise)."""
    kw.setdefault("state", "running")
    return job(jid, submit_time=submitted, **kw)


def test_an_active_resource_powers_up_a_spare():
    nodes = [node("t-small-1", state=S.BUSY, jobs=("1",), cores_alloc=4), off("t-small-2"), off("t-small-3")]
    plan = plan_for(observed([recent(1)], nodes), cloud_cfg(quiet=1200))
    assert powered_up(plan) == {"small": ("t-small-2",)}
    assert plan.launches[0].reason == "spare=1"
    assert plan.timers.last_submit == {"small": T0 - 100}
    # spare: 2 takes both; spare: 0 none.
    plan = plan_for(observed([recent(1)], nodes), cloud_cfg(res(spare=2), quiet=1200))
    assert powered_up(plan) == {"small": ("t-small-2", "t-small-3")}
    assert plan_for(observed([recent(1)], nodes), cloud_cfg(res(spare=0), quiet=1200)).launches == ()


def test_a_node_powered_up_for_min_is_the_spare_too():
    nodes = [off("t-small-1"), off("t-small-2"), off("t-small-3")]
    plan = plan_for(observed([recent(1)], nodes), cloud_cfg(res(min=1), quiet=1200))
    assert powered_up(plan) == {"small": ("t-small-1",)}
    plan = plan_for(observed([recent(1)], nodes), cloud_cfg(res(min=1, spare=2), quiet=1200))
    assert powered_up(plan) == {"small": ("t-small-1", "t-small-2")}


def test_idle_and_booting_nodes_no_job_waits_for_are_the_spare():
    idle = [node("t-small-1"), off("t-small-2")]
    assert plan_for(observed([recent(1)], idle), cloud_cfg(quiet=1200)).launches == ()
    booting = [node("t-small-1", state=S.STARTING, created=T0 - 10), off("t-small-2")]
    assert plan_for(observed([recent(1)], booting), cloud_cfg(quiet=1200)).launches == ()
    # A booting node a job waits for is no spare.
    placed = [node("t-small-1", state=S.STARTING, created=T0 - 10, jobs=("1",)), off("t-small-2")]
    plan = plan_for(observed([recent(1, state="pending")], placed), cloud_cfg(quiet=1200))
    assert powered_up(plan) == {"small": ("t-small-2",)}


def test_no_spare_while_a_job_waits_unplaced_or_once_the_resource_is_quiet():
    nodes = [off("t-small-1"), off("t-small-2")]
    # A pending job the WLM has not placed: its nodes come when it places it.
    assert plan_for(observed([recent(1, state="pending")], nodes), cloud_cfg(quiet=1200)).launches == ()
    # The last job came 1200 s ago; or the rule is off.
    assert plan_for(observed([recent(1, submitted=T0 - 1200)], nodes), cloud_cfg(quiet=1200)).launches == ()
    assert plan_for(observed([recent(1)], nodes), cloud_cfg(quiet=0)).launches == ()
    # The kept time counts too: the job that came at T0 - 100 has ended.
    kept = Timers(last_submit={"small": T0 - 100})
    plan = plan_for(observed([], nodes), cloud_cfg(quiet=1200), timers=kept)
    assert powered_up(plan) == {"small": ("t-small-1",)}
    assert plan.timers.last_submit == {"small": T0 - 100}


def test_the_spare_stays_past_the_idle_timeout_while_jobs_keep_coming():
    nodes = [node("t-small-1", created=1.0), node("t-small-2", created=2.0)]
    timers = Timers(idle_since={"t-small-1": T0 - 700, "t-small-2": T0 - 650})
    plan = plan_for(observed([recent(1)], nodes), cloud_cfg(quiet=1200), timers=timers)
    assert acts(plan) == [("power_down", "t-small-2")]  # newest first; the other is the spare
    # Without the rule both go.
    plan = plan_for(observed([recent(1)], nodes), cloud_cfg(quiet=0), timers=timers)
    assert acts(plan) == [("power_down", "t-small-2"), ("power_down", "t-small-1")]


def test_a_quiet_resource_powers_idle_nodes_down_after_prewarm():
    nodes = [node("t-small-1"), node("t-small-2"), node("t-small-3", created=5.0)]
    timers = Timers(
        idle_since={"t-small-1": T0 - 60, "t-small-2": T0 - 59, "t-small-3": T0 - 100},
        last_submit={"small": T0 - 1200},
    )
    plan = plan_for(observed([], nodes), cloud_cfg(quiet=1200), timers=timers)
    # t-small-2 has idled less than prewarm (60 s).
    assert acts(plan) == [("power_down", "t-small-3"), ("power_down", "t-small-1")]
    assert "no job for it submitted in 1200s" in plan.actions[0].reason
    # min still holds.
    plan = plan_for(observed([], nodes), cloud_cfg(res(min=2), quiet=1200), timers=timers)
    assert acts(plan) == [("power_down", "t-small-3")]
    # Still active: nothing goes before the idle timeout.
    active = Timers(idle_since=timers.idle_since, last_submit={"small": T0 - 1199})
    assert acts(plan_for(observed([], nodes), cloud_cfg(quiet=1200), timers=active)) == []


def test_a_job_several_resources_accept_keeps_one_spare_in_the_first_with_room():
    config = cloud_cfg(res("a", priority=1, max=1), res("b", priority=2, max=2), quiet=1200)
    nodes = [off("t-a-1", "a"), off("t-b-1", "b"), off("t-b-2", "b")]
    plan = plan_for(observed([recent(1)], nodes), config)
    assert plan.timers.last_submit == {"a": T0 - 100}
    assert powered_up(plan) == {"a": ("t-a-1",)}
    # a is full (its one node runs a job): the job counts for b.
    nodes[0] = node("t-a-1", "a", state=S.BUSY, jobs=("1",), cores_alloc=4)
    plan = plan_for(observed([recent(1, node_names=("t-a-1",))], nodes), config)
    assert plan.timers.last_submit == {"b": T0 - 100}
    assert powered_up(plan) == {"b": ("t-b-1",)}


def test_last_submit_follows_the_resources_a_job_may_run_on():
    config = cloud_cfg(res("small"), res("gpu", features=["gpu"], priority=200), quiet=1200)
    jobs = [recent(1, submitted=T0 - 50), recent(2, submitted=T0 - 80, features=frozenset({"gpu"}))]
    plan = plan_for(observed(jobs, []), config, timers=Timers(last_submit={"gpu": T0 - 10, "gone": T0}))
    assert plan.timers.last_submit == {"small": T0 - 50, "gpu": T0 - 10}


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


def test_next_due_includes_the_end_of_a_resources_active_time_and_quiet_idle_clocks():
    config = cloud_cfg(quiet=1200)
    active = Plan(timers=Timers(last_submit={"small": T0 - 1000}, idle_since={"a": T0 - 10}))
    assert next_due(observed(), config, active, T0) == T0 + 200  # turns quiet (idle timeout: T0 + 590)
    quiet = Plan(timers=Timers(last_submit={"small": T0 - 1300}, idle_since={"a": T0 - 10}))
    assert next_due(observed(), config, quiet, T0) == T0 + 50  # idle for prewarm
    assert next_due(observed(), cloud_cfg(quiet=0), quiet, T0) == T0 + 590
