"""Reproducers of the policy findings in docs/simulation.md.

Each states what the fix of its finding achieves; findings 1 and 2 are
fixed. A reproducer of an open finding carries a strict xfail marker, so
that a fix which makes it pass fails the run until the marker is dropped.
"""

from __future__ import annotations

from sim_helpers import simulate, starts, workload

from tools.sim.core import CloudModel
from tools.sim.policies import Dcaas, PowerSave


def test_a_wide_job_starts_soon_despite_a_few_failed_boots():
    # Finding 1, fixed: failed boots of a pass are one back-off step.
    # One job of 256 one-core nodes; 2 % of boots fail (seed 1).
    w = workload([(0, 3600, 256)], max_nodes=256)
    sim, _result = simulate(w, PowerSave(), CloudModel(failure_rate=0.02), seed=1)
    assert starts(sim)[1] < 300  # powersave: 188 s
    sim, _result = simulate(w, Dcaas(), CloudModel(failure_rate=0.02), seed=1)
    assert starts(sim)[1] < 600  # dcaas: 3589 s with a back-off step per instance, 386 s per pass


def test_a_wide_job_is_not_overtaken_at_max():
    # Finding 2, fixed: the first job that cannot start keeps what it found and grows.
    # 4 nodes max. A holds 3 until 3000 s; B needs all 4; 2-node jobs keep coming.
    w = workload([(0, 3000, 3), (10, 100, 4)] + [(100 + 600 * i, 1500, 2) for i in range(20)], max_nodes=4)
    sim, _result = simulate(w, Dcaas())
    assert starts(sim)[2] <= 3200  # static 3000, powersave 3120; dcaas 3060 (4560 before the fix)


def test_no_node_idles_for_a_job_held_behind_a_reservation():
    # 5 nodes max. A holds 3 until 3000 s; B needs 4; C (1 node, 5000 s) fits beside B.
    w = workload([(0, 3000, 3), (10, 100, 4), (20, 5000, 1)], max_nodes=5)
    sim, _result = simulate(w, Dcaas())
    assert starts(sim)[3] < 600  # powersave 80; dcaas 70 (3120 before the fix)
