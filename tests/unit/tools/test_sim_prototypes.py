"""The reservation-aware power-saving prototype, on hand-worked runs."""

from __future__ import annotations

import pytest
from sim_helpers import simulate, starts, workload

from tools.sim.policies import PowerSave
from tools.sim.prototypes import ReservationAware


def test_prewarm_boots_the_planned_nodes_before_the_planned_start():
    # Job 1 (one node, runs to its 1000 s limit) boots a node: runs 60..1060.
    # Job 2 wants both nodes and is planned for 1060. Power saving boots the
    # second node when job 2 is placed at 1060, so job 2 starts at 1120; the
    # prototype starts it at 1000 and job 2 starts at 1060. The boot costs
    # the same, and node 1 no longer idles 60 s waiting for node 2.
    w = workload([(0, 1000, 1), (10, 100, 2)], max_nodes=2)
    sim_ps, ps = simulate(w, PowerSave())
    sim_ra, ra = simulate(w, ReservationAware())
    assert starts(sim_ps) == {1: 60.0, 2: 1120.0}
    assert starts(sim_ra) == {1: 60.0, 2: 1060.0}
    assert ps.node_hours - ra.node_hours == pytest.approx(60 / 3600)
    assert sim_ra.controller.prewarmed == 1


def test_an_idle_node_planned_for_a_far_start_is_suspended_at_once():
    # Jobs 1 and 2 start at 60 on two booted nodes; job 2 ends at 360. Job 3
    # (both nodes, submitted at 200) is planned for 5060, when job 1 ends.
    # Power saving keeps node 2 idle 360..960 and boots it for job 3 at 5060
    # (start 5120); the prototype suspends it at 360 and boots it at 5000.
    w = workload([(0, 5000, 1), (0, 300, 1), (200, 100, 2)], max_nodes=2)
    sim_ps, ps = simulate(w, PowerSave())
    sim_ra, ra = simulate(w, ReservationAware())
    assert starts(sim_ps)[3] == 5120.0
    assert starts(sim_ra)[3] == 5060.0
    assert sim_ra.controller.suspended_early == 1
    # Node 2 idles 600 s less; node 1 again does not wait 60 s for node 2.
    assert ps.node_hours - ra.node_hours == pytest.approx(660 / 3600)


def test_a_node_whose_job_may_start_soon_is_left_to_the_suspend_timer():
    # As above, but job 1 ends at 960, 600 s after node 2 becomes idle at
    # 360: no more than suspend_time + lead (660 s) ahead, so it is kept.
    w = workload([(0, 900, 1), (0, 300, 1), (200, 100, 2)], max_nodes=2)
    sim_ra, _ra = simulate(w, ReservationAware())
    assert sim_ra.controller.suspended_early == 0
    assert starts(sim_ra)[3] == 960.0
