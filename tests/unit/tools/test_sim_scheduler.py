"""FCFS with EASY backfilling, on static clusters where answers are known."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from sim_helpers import simulate, starts, workload

from tools.sim.policies import Static
from tools.sim.scheduler import Scheduler


def test_fcfs_in_submit_order():
    # 2 nodes. Job 1 takes both; 2 and 3 wait and run in order.
    w = workload([(0, 100, 2), (10, 50, 2), (20, 50, 1)], max_nodes=2)
    sim, r = simulate(w, Static())
    assert starts(sim) == {1: 0.0, 2: 100.0, 3: 150.0}
    assert r.mean_wait_s == (0 + 90 + 130) / 3


def test_backfill_that_ends_before_the_reservation():
    # 4 nodes; job 1 holds 3 until t=100. Head job 2 needs 4: reserved at 100.
    # Job 3 (1 node, 50 s) fits in the hole and ends before 100: backfills.
    w = workload([(0, 100, 3), (1, 10, 4), (2, 50, 1)])
    sim, _result = simulate(w, Static())
    assert starts(sim) == {1: 0.0, 2: 100.0, 3: 2.0}


def test_no_backfill_that_would_delay_the_head():
    # Same, but job 3 runs 200 s on the node the head needs at 100: it waits.
    w = workload([(0, 100, 3), (1, 10, 4), (2, 200, 1)])
    sim, _result = simulate(w, Static())
    assert starts(sim) == {1: 0.0, 2: 100.0, 3: 110.0}


def test_backfill_on_nodes_the_head_does_not_need():
    # 4 nodes, job 1 holds 2 until 100; the head needs 3 at 100, so one node
    # is spare even then: a long 1-node job may take it now.
    w = workload([(0, 100, 2), (1, 10, 3), (2, 500, 1), (3, 500, 1)])
    sim, _result = simulate(w, Static())
    s = starts(sim)
    assert s[1] == 0.0 and s[2] == 100.0
    assert s[3] == 2.0  # the spare node
    assert s[4] == 110.0  # a second one would delay the head


def test_estimates_not_run_times_drive_the_reservation():
    # Job 1 asks for 1000 s but ends at 100. Job 3 (300 s estimate) backfills
    # before the estimated shadow (1000); the head then starts when job 1 really ends.
    w = workload([(0, 100, 3, 1000), (1, 10, 4), (2, 300, 1, 300)])
    sim, _result = simulate(w, Static())
    assert starts(sim) == {1: 0.0, 2: 302.0, 3: 2.0}


def test_shared_nodes_by_cores():
    # 2 nodes of 4 cores. Job 1: 6 procs = 2 nodes x 3 cores, leaving 1 core on each.
    # Job 2 (2 procs: 1 node x 2 cores) must wait; job 3 (1 proc) fits a leftover core.
    w = workload([(0, 100, 6), (1, 10, 2), (2, 50, 1)], cores_per_node=4, max_nodes=2)
    sim, _result = simulate(w, Static())
    assert starts(sim) == {1: 0.0, 2: 100.0, 3: 2.0}


def test_no_reservation_when_the_pool_can_never_hold_the_head():
    # A pool smaller than the head (a dynamic cluster still growing): nothing to protect.
    sched = Scheduler(cores_per_node=1)
    shadow, cap = sched._reservation(_job(nodes=5), now=0.0)
    assert shadow == math.inf and cap == {}


def _job(nodes: int, cores: int = 1):
    from tools.sim.scheduler import SimJob
    from tools.sim.workload import JobSpec

    return SimJob(JobSpec(1, 0.0, 10.0, 10.0, nodes * cores, nodes, cores))


jobs_strategy = st.lists(
    st.tuples(
        st.integers(0, 400),  # submit
        st.integers(1, 300),  # run = estimate: the guarantee needs exact estimates
        st.integers(1, 8),  # procs
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(jobs=jobs_strategy, cores=st.sampled_from([1, 2, 4]))
def test_easy_never_delays_the_head_beyond_its_first_reservation(jobs, cores):
    """With exact estimates, a job starts no later than the reservation it got
    when it first became the head: backfilling never delays it."""
    w = workload(sorted(jobs), cores_per_node=cores, max_nodes=max(1, 8 // cores))
    first_shadow: dict[int, float] = {}
    original = Scheduler._reservation

    def spy(self, head, now):
        shadow, cap = original(self, head, now)
        first_shadow.setdefault(head.id, shadow)
        return shadow, cap

    Scheduler._reservation = spy
    try:
        sim, r = simulate(w, Static())
    finally:
        Scheduler._reservation = original
    assert r.unfinished == 0
    for job in sim.jobs:
        if job.id in first_shadow:
            assert job.start <= first_shadow[job.id] + 1e-9, (job.id, job.start, first_shadow[job.id])
