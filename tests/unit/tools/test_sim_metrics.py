"""Metrics, and whole runs of every controller on tiny traces with known answers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from sim_helpers import EXACT_CLOUD, simulate, starts, workload

from tools.sim import report
from tools.sim.core import CloudModel, Controller, Simulation
from tools.sim.metrics import bounded_slowdown, percentile, summarize
from tools.sim.policies import Dcaas, DcaasCloud, Legacy, PowerSave, Static


def test_percentile_interpolates_between_ranks():
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([1, 2, 3, 4], 0) == 1 and percentile([1, 2, 3, 4], 100) == 4
    assert percentile([7], 95) == 7
    assert math.isnan(percentile([], 95))


def test_bounded_slowdown():
    assert bounded_slowdown(0, 100) == 1.0
    assert bounded_slowdown(90, 10) == 10.0
    assert bounded_slowdown(100, 5) == 10.5  # run below 10 s counts as 10 s
    assert bounded_slowdown(5, 1) == 1.0  # never below 1


def test_static_run_metrics():
    w = workload([(0, 100, 2), (10, 50, 2), (20, 50, 1)], max_nodes=2)
    sim, r = simulate(w, Static())
    assert starts(sim) == {1: 0.0, 2: 100.0, 3: 150.0}
    assert r.node_hours == pytest.approx(2 * 200 / 3600)
    assert r.lower_bound_node_hours == pytest.approx(350 / 3600)
    assert r.cost_ratio == pytest.approx(400 / 350)
    assert r.mean_wait_s == pytest.approx(220 / 3)
    assert r.p95_wait_s == pytest.approx(126.0)
    assert r.mean_bsld == pytest.approx((1 + 140 / 50 + 180 / 50) / 3)
    assert (r.peak_nodes, r.launches, r.unfinished) == (2, 0, 0)
    assert r.makespan_h == pytest.approx(200 / 3600)
    assert r.utilisation == pytest.approx(350 / 400)


# One job of one node and 100 s, submitted at 0; boots take exactly 60 s.
ONE_JOB = [(0, 100, 1)]


def test_dcaas_one_job():
    sim, r = simulate(workload(ONE_JOB), Dcaas())
    # Launched at the first cycle (0), up at 60, runs 60..160. The cycle at 180
    # first sees it idle since 160 (the WLM's last-busy time); drained at 160
    # + idle_timeout (600) = 760 by a pass the idle clock brings forward,
    # deleted by the pass a drain brings forward, one watch (5 s) later:
    # 765 s of one node.
    assert starts(sim) == {1: 60.0}
    assert r.node_hours == pytest.approx(765 / 3600)
    assert (r.launches, r.peak_nodes, r.mean_wait_s, r.refused_deletes) == (1, 1, 60.0, 0)
    assert sim.billable == 0 and not sim.nodes


def test_dcaas_watch_starts_a_pass_for_a_new_job():
    # Job 1 at 0 gets a node in the pass at 0; job 2 comes at 3. With the
    # daemon's watch (every 5 s between passes) the look at 5 sees it pending
    # and starts a pass: its node is up at 65. Without it, the pass at 30.
    w = workload([(0, 300, 1), (3, 100, 1)])
    sim, _r = simulate(w, Dcaas({"timers": {"interval": 30, "watch": 5}}))
    assert starts(sim) == {1: 60.0, 2: 65.0}
    assert sim.controller.stats()["woken"] == 1
    sim, _r = simulate(w, Dcaas({"timers": {"interval": 30, "watch": 0}}))
    assert starts(sim) == {1: 60.0, 2: 90.0}
    assert sim.controller.stats()["woken"] == 0


def test_powersave_one_job():
    sim, r = simulate(workload(ONE_JOB), PowerSave())
    # Powered up when the job is placed (0), up at 60, idle at 160, powered down at 760.
    assert starts(sim) == {1: 60.0}
    assert r.node_hours == pytest.approx(760 / 3600)
    assert r.launches == 1


def test_legacy_one_job():
    sim, r = simulate(workload(ONE_JOB), Legacy())
    # Launched at 0, up at 60, idle at 160, deleted by the first cycle 600 s later (780).
    assert starts(sim) == {1: 60.0}
    assert r.node_hours == pytest.approx(780 / 3600)


@dataclass(frozen=True)
class ScriptedCloud(CloudModel):
    """Boots that fail in a given order: ``script[i]`` is whether launch i fails."""

    script: tuple[bool, ...] = ()

    def draw(self, rng):
        n = getattr(rng, "launch_no", 0)
        rng.launch_no = n + 1
        return self.boot_delay, n < len(self.script) and self.script[n]


def test_dcaas_replaces_a_node_that_fails_to_boot():
    cloud = ScriptedCloud(boot_delay=60.0, boot_jitter=0.0, failure_rate=0.0, script=(True,))
    sim, r = simulate(workload(ONE_JOB), Dcaas(), cloud)
    # The instance errors at 60: as in Engine.run_once, the resource backs off
    # for backoff_initial (60 s) and that cycle only deletes it. The cycle at
    # 120 launches another, up at 180. The job runs 180..280; idle seen at
    # 300 as idle since 280, drained 880, deleted one watch (5 s) later.
    assert starts(sim) == {1: 180.0}
    assert (r.launches, r.failed_launches) == (2, 1)
    assert r.node_hours == pytest.approx((60 + 885 - 120) / 3600)


def test_legacy_blocks_on_a_failed_boot_until_max_launch_time():
    cloud = ScriptedCloud(boot_delay=60.0, boot_jitter=0.0, failure_rate=0.0, script=(True,))
    sim, _result = simulate(workload(ONE_JOB), Legacy(), cloud)
    # The failed instance looks like a starting node until 1200 s have passed:
    # the cycle at 1230 deletes it and launches a new node, up at 1290.
    assert starts(sim) == {1: 1290.0}


def test_powersave_requeues_jobs_of_a_node_that_fails_to_boot():
    cloud = ScriptedCloud(boot_delay=60.0, boot_jitter=0.0, failure_rate=0.0, script=(True,))
    sim, r = simulate(workload(ONE_JOB), PowerSave(), cloud)
    # Fails at 60, the job is requeued and placed again at once: up at 120.
    assert starts(sim) == {1: 120.0}
    assert r.failed_launches == 1


def test_dcaas_grows_for_a_wide_job_and_packs_small_ones():
    # 4 nodes of 4 cores. A 16-core job and four 1-core jobs arrive together.
    w = workload([(0, 100, 16), (0, 100, 1), (0, 100, 1), (0, 100, 1), (0, 100, 1)], cores_per_node=4)
    sim, r = simulate(w, Dcaas())
    # The wide job gets all 4 nodes; the small ones share one node after it
    # (the cluster is at max): exactly 4 nodes, never more.
    assert r.peak_nodes == 4
    s = starts(sim)
    assert s[1] == 60.0 and all(s[i] == 160.0 for i in (2, 3, 4, 5))


def test_controllers_never_delete_a_busy_node():
    w = workload([(i * 37, 200 + (i * 53) % 400, 1 + i % 3) for i in range(60)], max_nodes=6)
    for controller in (Dcaas(), Legacy(), PowerSave()):
        _sim, r = simulate(w, controller, CloudModel(failure_rate=0.2), seed=3)
        assert r.unfinished == 0 and r.refused_deletes == 0, controller.name
        assert r.peak_nodes <= 6


def test_dominates():
    w = workload(ONE_JOB)
    _sim, a = simulate(w, Dcaas())
    b = type(a)(**{**a.__dict__, "node_hours": a.node_hours + 1})
    assert report.dominates(a, b) and not report.dominates(b, a)
    assert not report.dominates(a, a)  # equal on both: not better on either


def test_a_run_that_left_jobs_unfinished_is_judged_by_what_finishing_costs():
    _sim, a = simulate(workload(ONE_JOB), Dcaas())
    nh = a.node_hours
    # Half the node-hours, but the jobs it never ran would cost at least as
    # much again: fewer node-hours from not running jobs is no win.
    starved = type(a)(**{**a.__dict__, "node_hours": nh / 2, "work_left_node_hours": nh, "mean_wait_s": 1e6})
    starved = type(a)(**{**starved.__dict__, "unfinished": 1})
    assert starved.cost_to_finish == pytest.approx(1.5 * nh)
    assert report.dominates(a, starved) and not report.dominates(starved, a)
    # If even finishing its jobs would cost less than a spent, a does not
    # dominate it; and a run with unfinished jobs never dominates (its
    # numbers are only lower bounds).
    cheap = type(a)(**{**starved.__dict__, "work_left_node_hours": nh / 4})
    assert not report.dominates(a, cheap) and not report.dominates(cheap, a)


def test_utilisation_counts_the_work_done_by_jobs_cut_off_at_the_horizon():
    # Job 1 runs 0..1000 on a static node; the run stops at 400 (horizon 300
    # after the last job would end, 100). 400 s of 1000 were done.
    sim = Simulation(workload([(0, 1000, 1, 1000)], max_nodes=1), Static(), EXACT_CLOUD, horizon=-600.0).run()
    r = summarize(sim)
    assert sim.truncated and r.unfinished == 1
    assert r.utilisation == pytest.approx(1.0)
    assert r.work_left_node_hours == pytest.approx(600 / 3600)
    assert r.cost_to_finish == pytest.approx(1000 / 3600)


def test_exact_cloud_has_no_jitter():
    import random

    assert EXACT_CLOUD.draw(random.Random(1)) == (60.0, False)


class Idler(Controller):
    """Looks at the cluster every 30 s and never launches anything."""

    def attach(self, sim):
        def tick(now):
            sim.call_at(now + 30, tick)

        sim.call_at(sim.t0, tick)


def test_a_starved_job_ends_the_run_at_the_horizon_and_counts_its_wait():
    sim = Simulation(workload([(0, 100, 1), (50, 10, 1)]), Idler(), EXACT_CLOUD, horizon=1000.0).run()
    r = summarize(sim)
    assert sim.truncated and sim.now == 1100.0  # last job would end at 60; plus the horizon
    assert r.unfinished == 2
    assert r.mean_wait_s == (1100 + 1050) / 2  # waits so far: lower bounds


CLOUD_NODES = {"wlm": {"nodes": "cloud"}}
# Without the spare and the quiet rule (timers.quiet: 0): the rules the
# tests below work out by hand, alone.
PLAIN_CLOUD_NODES = {"wlm": {"nodes": "cloud"}, "timers": {"quiet": 0}}


def test_dcaas_cloud_nodes_one_job():
    sim, r = simulate(workload(ONE_JOB), Dcaas(PLAIN_CLOUD_NODES))
    # The WLM places the job on an off node at 0; its resume hook wakes the
    # engine, which powers the node up at once: up at 60, runs 60..160. The
    # pass at 180 sees it idle since 160; powered down at 160 + 600 = 760,
    # as power saving does (the WLM keeps the node, off).
    assert starts(sim) == {1: 60.0}
    assert r.node_hours == pytest.approx(760 / 3600)
    _sim, ps = simulate(workload(ONE_JOB), PowerSave())
    assert ps.node_hours == r.node_hours
    assert len(sim.nodes) == sim.max_nodes and sim.billable == 0


def test_dcaas_cloud_is_dcaas_with_cloud_nodes_and_the_targets_are_checked_for_both():
    w = workload(ONE_JOB)
    sim_cloud, cloud = simulate(w, DcaasCloud({"timers": {"quiet": 0}}))
    sim_plain, plain = simulate(w, Dcaas(PLAIN_CLOUD_NODES))
    assert cloud.policy == "dcaas-cloud" and sim_cloud.controller.cloud_nodes
    assert (starts(sim_cloud), cloud.node_hours) == (starts(sim_plain), plain.node_hours)
    _sim, dynamic = simulate(w, Dcaas())
    _sim, ps = simulate(w, PowerSave())
    marks = report.checks([dynamic, cloud, ps])
    assert {(c.policy, c.target) for c in marks} == {
        (name, target)
        for name in ("dcaas", "dcaas-cloud")
        for target in ("node-hours <= 1.2x lower bound", "Pareto-dominates powersave")
    }


def test_dcaas_cloud_nodes_power_down_early_and_prewarm_for_a_planned_job():
    # Jobs 1 and 2 start at 60. Job 3 (both nodes, at 200; the watch starts
    # a pass then, so passes fall at 230, 260, ...) is planned for 5060, when
    # job 1 reaches its limit. Job 2 ends at 360: the pass at 380 powers its
    # node down (planned, start far away); the pass at 5000 powers it up
    # again, and job 3 starts at 5060. Power saving idles that node 360..960
    # and boots it only when job 3 is placed (start 5120): 580 s more for
    # node 2 (idle 380..960), 60 s more for node 1, which waits for node 2.
    w = workload([(0, 5000, 1), (0, 300, 1), (200, 100, 2)], max_nodes=2)
    sim, r = simulate(w, Dcaas(PLAIN_CLOUD_NODES))
    sim_ps, ps = simulate(w, PowerSave())
    assert starts(sim) == {1: 60.0, 2: 60.0, 3: 5060.0}
    assert starts(sim_ps)[3] == 5120.0
    assert ps.node_hours - r.node_hours == pytest.approx(640 / 3600)


def test_dcaas_restarts_the_idle_clock_of_a_node_that_ran_a_job_between_passes():
    # The node is up at 60; job 1 runs 60..160. The pass at 180 sees it idle
    # since 160. Job 2 (at 200) starts on it at once and ends at 205, between
    # two passes; the pass at 210 sees it idle again, and Slurm's last-busy
    # time (205) restarts the clock: powered down at 805, as power saving
    # does, not at 760.
    w = workload([(0, 100, 1), (200, 5, 1)])
    sim, r = simulate(w, Dcaas(PLAIN_CLOUD_NODES))
    _sim, ps = simulate(w, PowerSave())
    assert starts(sim) == {1: 60.0, 2: 200.0}
    assert r.node_hours == ps.node_hours == pytest.approx(805 / 3600)


def test_dcaas_cloud_nodes_keep_a_spare_while_jobs_come():
    # At 0 job 1 is placed on node 1; the same pass powers up node 2 as the
    # spare (a job came, none waits unplaced). Both are up at 60. Job 2 (at
    # 300) starts at once on the spare, not at 360 after a boot; the pass at
    # 300 powers up node 3 as the next spare. Job 2 ends at 330: node 2 idles
    # to 930 and goes (node 3 is the spare). Job 1 ends at 1060; the pass at
    # 1080 powers node 3 down (idle since 360) and keeps node 1 as the spare,
    # until the resource turns quiet at 300 + 1200 = 1500.
    w = workload([(0, 1000, 1), (300, 30, 1)], max_nodes=4)
    sim, r = simulate(w, Dcaas(CLOUD_NODES))
    assert starts(sim) == {1: 60.0, 2: 300.0}
    assert sim.timeline == [(0.0, 2), (300.0, 3), (930.0, 2), (1080.0, 1), (1500.0, 0)]
    assert r.node_hours == pytest.approx((1500 + 930 + 780) / 3600)
    sim_ps, _ps = simulate(w, PowerSave())
    assert starts(sim_ps) == {1: 60.0, 2: 360.0}


def test_dcaas_cloud_nodes_power_idle_nodes_down_when_no_job_came_for_a_while():
    # The spare (node 2, idle from 60) stays past its idle timeout while the
    # resource is active, and goes when it turns quiet at 0 + 1200. Job 1
    # ends at 3060, when no job has come for 3060 s: its node goes once it
    # has idled prewarm (60 s), at 3120, not at 3660.
    sim, r = simulate(workload([(0, 3000, 1)], max_nodes=4), Dcaas(CLOUD_NODES))
    assert starts(sim) == {1: 60.0}
    assert sim.timeline == [(0.0, 2), (1200.0, 1), (3120.0, 0)]
    assert r.node_hours == pytest.approx((3120 + 1200) / 3600)
