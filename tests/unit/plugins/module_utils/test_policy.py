"""Table-driven tests of the scaling policy, one rule per test."""

from __future__ import annotations

import pytest
from policy_helpers import S, acts, cfg, job, jobs, launched, node, observed, res

from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Backoff,
    Controls,
    Headroom,
    Timers,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.policy import decide

T0 = 10_000.0


def plan_for(obs, config=None, now=T0, timers=None, controls=None):
    return decide(obs, config or cfg(), now, timers or Timers(), controls)


def test_empty_cluster_empty_queue_does_nothing():
    plan = plan_for(observed())
    assert not plan.changes and not plan.unfit


@pytest.mark.parametrize(
    ("pending", "cores", "expect"),
    [
        (1, 1, 1),
        (4, 1, 1),  # four 1-core jobs pack onto one 4-core node
        (5, 1, 2),
        (10, 1, 3),
        (3, 2, 2),  # two 2-core jobs per node
        (3, 3, 3),  # a 3-core job leaves 1 core nobody else can use
    ],
)
def test_bin_packs_pending_jobs_onto_flavor(pending, cores, expect):
    plan = plan_for(observed(jobs(pending, cores=cores)))
    assert launched(plan) == {"small": expect}


def test_memory_is_packed_too():
    plan = plan_for(observed(jobs(4, cores=1, memory_mb=5000)))
    assert launched(plan) == {"small": 4}


def test_booting_nodes_cover_demand_no_double_launch():
    nodes = [node("a", state=S.STARTING, created=T0 - 30)]
    plan = plan_for(observed(jobs(4), nodes))
    assert launched(plan) == {}


def test_growth_does_not_stall_while_nodes_boot():
    # The original daemon launched nothing while any node was starting.
    nodes = [node("a", state=S.STARTING, created=T0 - 30)]
    plan = plan_for(observed(jobs(12), nodes))
    assert launched(plan) == {"small": 2}


def test_idle_capacity_is_used_before_launching():
    plan = plan_for(observed(jobs(3), [node("a")]))
    assert launched(plan) == {}


def test_busy_nodes_are_not_counted_as_free():
    plan = plan_for(observed(jobs(1), [node("a", state=S.BUSY, jobs=("x",), cores_alloc=4)]))
    assert launched(plan) == {"small": 1}


def test_all_pending_jobs_are_considered_not_a_window():
    many = jobs(200, cores=4)  # the original looked at the first 30 only
    plan = plan_for(observed(many), cfg(res(max=500), limits={"max_launches_per_cycle": 500}))
    assert launched(plan) == {"small": 200}


def test_multi_node_job_gets_all_nodes_in_one_step():
    plan = plan_for(observed([job("mpi", nodes=3, cores=4)]))
    assert launched(plan) == {"small": 3}
    assert plan.launches[0].jobs == ("mpi",)


def test_multi_node_job_uses_idle_nodes_and_launches_the_rest():
    plan = plan_for(observed([job("mpi", nodes=3, cores=4)], [node("a")]))
    assert launched(plan) == {"small": 2}


def test_multi_node_job_never_partially_launched_on_a_resource_without_room():
    config = cfg(res("small", max=2), res("big", max=5, priority=200))
    plan = plan_for(observed([job("mpi", nodes=3)]), config)
    assert launched(plan) == {"big": 3}


def test_first_job_that_cannot_start_keeps_its_nodes_and_grows():
    # max 5, two nodes busy, one idle for long: the 4-node job cannot get
    # all its nodes (1 found + room 2), so it keeps the idle one and takes the
    # room; the 1-node job behind it gets nothing, and the idle node is not
    # drained.
    busy = [node(f"b{i}", state=S.BUSY, jobs=(f"x{i}",), cores_alloc=4) for i in range(2)]
    obs = observed([job("wide", nodes=4, cores=4), job("small", cores=4)], [*busy, node("a")])
    timers = Timers(idle_since={"a": T0 - 10_000})
    plan = plan_for(obs, cfg(res(max=5)), timers=timers)
    assert launched(plan) == {"small": 2}
    assert plan.launches[0].jobs == ("wide",)
    assert not acts(plan)


def test_only_the_first_blocked_job_keeps_and_grows():
    # Both pools are short of room. "w" (first) has nothing to keep; "x"
    # would keep the idle node c and grow by one, but only the first blocked
    # job may: c drains as any idle node does.
    busy = [
        node(n, r, state=S.BUSY, jobs=(f"j{n}",), cores_alloc=4)
        for n, r in (("p0", "phys"), ("p1", "phys"), ("c1", "chem"))
    ]
    jobs_ = [job("w", nodes=2, cores=4, account="phys"), job("x", nodes=3, cores=4, account="chem")]
    config = cfg(res("phys", accounts=["phys"], max=2), res("chem", accounts=["chem"], max=3))
    obs = observed(jobs_, [*busy, node("c", "chem")])
    plan = plan_for(obs, config, timers=Timers(idle_since={"c": T0 - 10_000}))
    assert launched(plan) == {}
    assert acts(plan) == [("drain", "c")]


def test_max_is_respected():
    plan = plan_for(observed(jobs(100, cores=4)), cfg(res(max=5)))
    assert launched(plan) == {"small": 5}


def test_existing_nodes_count_against_max():
    nodes = [node(f"b{i}", state=S.BUSY, jobs=(f"x{i}",), cores_alloc=4) for i in range(4)]
    plan = plan_for(observed(jobs(10, cores=4), nodes), cfg(res(max=5)))
    assert launched(plan) == {"small": 1}


def test_launch_budget_per_cycle():
    plan = plan_for(observed(jobs(50, cores=4)), cfg(res(max=50), limits={"max_launches_per_cycle": 7}))
    assert launched(plan) == {"small": 7}


def test_job_wider_than_budget_still_starts_when_first():
    plan = plan_for(observed([job("wide", nodes=8, cores=4)]), cfg(res(max=10), limits={"max_launches_per_cycle": 3}))
    assert launched(plan) == {"small": 8}


def test_resources_tried_by_priority():
    config = cfg(res("b", priority=20), res("a", priority=10))
    assert launched(plan_for(observed(jobs(1)), config)) == {"a": 1}


def test_tenant_pool_first_then_shared_overflow():
    config = cfg(
        res("shared", priority=1, max=10),
        res("chem", accounts=["chem"], priority=50, max=2),
    )
    plan = plan_for(observed(jobs(16, cores=2, account="chem")), config)
    # 16 x 2 cores = 8 nodes: 2 in chem's own pool (its max), 6 overflow.
    assert launched(plan) == {"chem": 2, "shared": 6}


def test_other_tenants_pool_is_never_used():
    config = cfg(res("chem", accounts=["chem"], max=10))
    plan = plan_for(observed(jobs(2, account="phys")), config)
    assert launched(plan) == {}
    assert [u.job for u in plan.unfit] == ["0", "1"]
    assert "no resource accepts account='phys'" in plan.unfit[0].reason


def test_partition_routing():
    config = cfg(res("cpu", partitions=["batch"]), res("gpu", partitions=["gpu"], features=["gpu"]))
    plan = plan_for(observed([job("g", partitions=("gpu",)), job("b", partitions=("batch",))]), config)
    assert launched(plan) == {"cpu": 1, "gpu": 1}


def test_feature_routing():
    config = cfg(res("cpu", priority=1), res("gpu", features=["gpu", "a100"], priority=2))
    plan = plan_for(observed([job("g", features=frozenset({"gpu"}))]), config)
    assert launched(plan) == {"gpu": 1}


def test_job_that_can_never_fit_is_reported_not_chased():
    plan = plan_for(observed([job("huge", cores=64), job("ok")]))
    assert launched(plan) == {"small": 1}
    assert [u.job for u in plan.unfit] == ["huge"]
    assert "64 cores" in plan.unfit[0].reason and "4 cores" in plan.unfit[0].reason


def test_job_wider_than_any_max_is_reported():
    plan = plan_for(observed([job("wide", nodes=11)]))
    assert [u.job for u in plan.unfit] == ["wide"] and "max=10" in plan.unfit[0].reason


def test_ineligible_jobs_are_ignored():
    plan = plan_for(observed([job("held", eligible=False, reason="JobHeldUser")]))
    assert not plan.changes and not plan.unfit


def test_min_floor_is_launched_and_kept():
    plan = plan_for(observed(), cfg(res(min=2)))
    assert launched(plan) == {"small": 2}
    idle = [node("a"), node("b")]
    timers = Timers(idle_since={"a": 0.0, "b": 0.0})
    plan = plan_for(observed(nodes=idle), cfg(res(min=2)), timers=timers)
    assert not plan.changes


@pytest.mark.parametrize(("idle_for", "drained"), [(599, False), (600, True), (5000, True)])
def test_idle_timeout_drains(idle_for, drained):
    timers = Timers(idle_since={"a": T0 - idle_for})
    plan = plan_for(observed(nodes=[node("a")]), cfg(res(), idle_timeout=600), timers=timers)
    assert acts(plan) == ([("drain", "a")] if drained else [])


def test_idle_clock_starts_when_first_seen_idle():
    plan = plan_for(observed(nodes=[node("a")]))
    assert plan.timers.idle_since == {"a": T0} and not plan.actions


@pytest.mark.parametrize(
    ("last_busy", "kept", "since"),
    [
        (T0 - 10, None, T0 - 10),  # the WLM's time, when within an interval
        (T0 - 100, None, T0 - 30),  # at most one interval (30 s) back
        (T0 + 5, None, T0),  # never in the future
        (T0 - 600, T0 - 500, T0 - 500),  # a running clock is kept
        (T0 - 10, T0 - 500, T0 - 10),  # a job ran between two passes: it restarts
        (None, T0 - 500, T0 - 500),  # no last-busy time: kept
    ],
)
def test_idle_clock_starts_at_the_wlm_last_busy_time(last_busy, kept, since):
    timers = Timers(idle_since={"a": kept} if kept else {})
    plan = plan_for(observed(nodes=[node("a", last_busy=last_busy)]), cfg(res(), interval=30), timers=timers)
    assert plan.timers.idle_since == {"a": since}


def test_idle_node_needed_by_pending_job_is_not_drained():
    timers = Timers(idle_since={"a": 0.0})
    plan = plan_for(observed(jobs(1), [node("a")]), timers=timers)
    assert acts(plan) == [] and launched(plan) == {}


def test_drained_empty_node_is_deleted():
    n = node("a", state=S.DRAINING, drained_by_us=True)
    assert acts(plan_for(observed(nodes=[n]))) == [("delete", "a")]


def test_the_pass_that_deletes_drained_nodes_keeps_the_floor():
    # Found on Nova (test_engine_nova's scale-down): min=1, one idle node and
    # two drained ones. Only the drained go; the idle one is what min keeps.
    drained = [node(n, state=S.DRAINING, created=2.0, drained_by_us=True) for n in ("b", "c")]
    obs = observed(nodes=[node("a", created=1.0), *drained])
    plan = plan_for(obs, cfg(res(min=1), idle_timeout=60), now=1000.0, timers=Timers(idle_since={"a": 0.0}))
    assert sorted(acts(plan)) == [("delete", "b"), ("delete", "c")]


def test_never_deletes_a_node_running_a_job():
    busy = node("a", state=S.DRAINING, drained_by_us=True, jobs=("7",), cores_alloc=1)
    down = node("b", state=S.DOWN, jobs=("8",))
    plan = plan_for(observed(nodes=[busy, down]), timers=Timers(down_since={"b": 0.0}))
    assert acts(plan) == []


def test_admin_drained_node_is_left_alone():
    n = node("a", state=S.DRAINING, drained_by_us=False, reason="disk replacement")
    assert acts(plan_for(observed(nodes=[n]))) == []


def test_drained_node_resumed_instead_of_launching():
    n = node("a", state=S.DRAINING, drained_by_us=True)
    plan = plan_for(observed(jobs(2), [n]))
    assert acts(plan) == [("resume", "a")] and launched(plan) == {}


def test_boot_timeout_deletes_and_replaces_in_the_same_plan():
    n = node("a", state=S.STARTING, created=T0 - 700)
    plan = plan_for(observed(jobs(1), [n]), cfg(res(max=1), boot_timeout=600))
    assert acts(plan) == [("delete", "a")]
    assert launched(plan) == {"small": 1}


def test_down_node_replaced_after_down_timeout():
    n = node("a", state=S.DOWN, reason="Not responding")
    fresh = plan_for(observed(jobs(1), [n]), cfg(res(max=1), down_timeout=300))
    assert acts(fresh) == [] and fresh.timers.down_since == {"a": T0}
    late = plan_for(
        observed(jobs(1), [n]), cfg(res(max=1), down_timeout=300), timers=Timers(down_since={"a": T0 - 301})
    )
    assert acts(late) == [("delete", "a")] and launched(late) == {"small": 1}


def test_failed_instance_is_replaced_at_once():
    n = node("a", state=S.DOWN, in_wlm=False, reason="NoValidHost")
    plan = plan_for(observed(jobs(1), [n]), cfg(res(max=1)))
    assert acts(plan) == [("delete", "a")] and launched(plan) == {"small": 1}


def test_backoff_falls_through_to_next_resource():
    config = cfg(res("a", priority=1), res("b", priority=2))
    timers = Timers(backoff={"a": Backoff(until=T0 + 60, failures=1, last_error="quota")})
    plan = plan_for(observed(jobs(1)), config, timers=timers)
    assert launched(plan) == {"b": 1}
    assert plan.timers.backoff == timers.backoff
    later = plan_for(observed(jobs(1)), config, now=T0 + 61, timers=timers)
    # The ended back-off is kept: the next failure doubles it.
    assert launched(later) == {"a": 1} and later.timers.backoff == timers.backoff


def test_an_ended_backoff_is_forgotten_once_a_node_launched_after_it_joins():
    config = cfg(res("a", priority=1), backoff_max=600)
    timers = Timers(backoff={"a": Backoff(until=T0 - 10, failures=3, last_error="NoValidHost")})
    joined_after = node("n1", "a", state=S.IDLE, created=T0 - 5)
    joined_before = node("n0", "a", state=S.IDLE, created=T0 - 100)
    assert plan_for(observed(nodes=[joined_before]), config, timers=timers).timers.backoff == timers.backoff
    assert plan_for(observed(nodes=[joined_after]), config, timers=timers).timers.backoff == {}
    booting = node("n1", "a", state=S.STARTING, created=T0 - 5)
    assert plan_for(observed(nodes=[booting]), config, timers=timers).timers.backoff == timers.backoff
    # No failure for backoff_max after it ended: forgotten.
    assert plan_for(observed(), config, now=T0 + 590, timers=timers).timers.backoff == {}


def test_a_booting_node_that_runs_a_job_is_not_replaced():
    # A node the WLM's node list does not show yet, though squeue runs a job
    # there: past boot_timeout it is still never deleted.
    n = node("a", state=S.STARTING, created=T0 - 10_000, jobs=("42",), in_wlm=False)
    plan = plan_for(observed([job("42", state="running", node_names=("a",))], [n]))
    assert acts(plan) == [] and launched(plan) == {}


def test_a_node_a_running_job_names_is_kept_even_when_its_record_does_not_show_it():
    down = node("a", state=S.DOWN, in_wlm=False, reason="not responding")
    plan = plan_for(observed([job("42", state="running", node_names=("a",))], [down]), cfg(res(max=1)))
    assert acts(plan) == [] and launched(plan) == {}
    assert any("a running job names them" in n for n in plan.notes)


def test_a_replan_that_picks_another_node_a_running_job_names_keeps_that_one_too():
    # Found by Hypothesis: three idle nodes past idle_timeout, min 1, so two
    # are surplus; the node records show no job, but running jobs name a1
    # and a3. Holding the first node picked used to let the replan drain
    # the other one instead.
    config = cfg(res("a", max=4, min=1), idle_timeout=300)
    idle = [node(f"a{i}", "a", state=S.IDLE) for i in (1, 2, 3)]
    timers = Timers(idle_since={n.name: T0 - 400 for n in idle})
    hidden = [job(f"h{i}", state="running", node_names=(f"a{i}",)) for i in (1, 3)]
    plan = plan_for(observed(hidden, idle), config, timers=timers)
    assert not [a for a in acts(plan) if a[1] in ("a1", "a3")]
    assert ("drain", "a2") in acts(plan)  # the free node still goes


def test_protected_mode_holds_every_node_and_still_launches_for_the_queue():
    idle = node("a", created=0.0)
    down = node("b", state=S.DOWN, in_wlm=False)
    obs = observed(
        jobs(2, cores=4), [idle, down], contradictions=("job 7 runs on x, which the WLM's node list does not show",)
    )
    plan = plan_for(obs, cfg(res(max=4)), timers=Timers(idle_since={"a": 0.0}))
    assert acts(plan) == [] and launched(plan) == {"small": 1}
    assert any(n.startswith("protected mode") and "job 7" in n for n in plan.notes)


def test_cloud_headroom_limits_launches_and_overflows():
    config = cfg(res("a", priority=1), res("b", priority=2))
    obs = observed(jobs(5, cores=4), headroom={"a": Headroom(instances=10, cores=8)})
    assert launched(plan_for(obs, config)) == {"a": 2, "b": 3}


def test_frozen_changes_nothing_but_reports():
    n = node("a", state=S.DRAINING, drained_by_us=True)
    plan = plan_for(observed([*jobs(3), job("huge", cores=99)], [n]), controls=Controls(frozen=True))
    assert not plan.changes and [u.job for u in plan.unfit] == ["huge"]


def test_drained_resource_gets_no_launches_and_its_nodes_drain():
    config = cfg(res("a", priority=1), res("b", priority=2))
    controls = Controls(drained_resources=frozenset({"a"}))
    plan = plan_for(observed(jobs(1), [node("x", "a")]), config, controls=controls)
    assert launched(plan) == {"b": 1}
    assert acts(plan) == [("drain", "x")]


def test_held_node_is_never_drained():
    timers = Timers(idle_since={"a": 0.0})
    plan = plan_for(observed(nodes=[node("a")]), timers=timers, controls=Controls(held_nodes=frozenset({"a"})))
    assert acts(plan) == []


def test_node_of_removed_resource_is_retired():
    plan = plan_for(observed(nodes=[node("x", "gone")]))
    assert acts(plan) == [("drain", "x")]


def test_stale_wlm_node_is_forgotten():
    plan = plan_for(observed(stale_wlm_nodes=("t-small-abc",)))
    assert acts(plan) == [("forget", "t-small-abc")]


def test_decide_is_pure():
    obs = observed(jobs(9), [node("a", state=S.STARTING, created=T0)])
    assert plan_for(obs) == plan_for(obs)
