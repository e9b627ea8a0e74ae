"""The simulator on the shared real traces: sanity, determinism, shortcut equivalence."""

from __future__ import annotations

import glob
import os

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Node, NodeState
from tools.sim import experiment
from tools.sim.core import CloudModel, Simulation
from tools.sim.metrics import summarize, utilisation_by_window
from tools.sim.policies import Dcaas, PowerSave, Static

TRACES = sorted(glob.glob(os.path.join(experiment.DEFAULT_TRACES, "*.swf.gz")))
needs_traces = pytest.mark.skipif(not TRACES, reason=f"no traces in {experiment.DEFAULT_TRACES}")
ids = [os.path.basename(p).split("-")[0] + "-" + os.path.basename(p).split("-")[1] for p in TRACES]

# The simulated static machine must reproduce the load the trace records:
# over the whole trace (relative), and month by month (absolute share of the
# machine; the simulated EASY scheduler is not the site's, so months differ
# a little, but a scheduler that lost or delayed work would differ a lot).
UTILISATION_TOLERANCE = 0.01
MONTHLY_TOLERANCE = 0.10


@needs_traces
@pytest.mark.slow
@pytest.mark.parametrize("path", TRACES, ids=ids)
def test_static_machine_runs_every_job_at_the_traced_utilisation(path):
    w = experiment.load(path)
    sim = Simulation(w, Static(), CloudModel()).run()
    r = summarize(sim)
    assert r.unfinished == 0
    assert r.jobs == len(w.jobs) > 1000
    # Utilisation from the simulated machine: its node-hours as accounted,
    # the work of the jobs as they ran in the simulation.
    ran = [(j.start, j.end, j.procs) for j in sim.jobs]
    assert all(j.submit <= j.start and j.end == pytest.approx(j.start + j.run) for j in sim.jobs)
    assert r.node_hours == pytest.approx(w.max_nodes * (max(j.end for j in sim.jobs) - w.t0) / 3600)
    implied = w.implied_utilisation()
    assert r.utilisation == pytest.approx(implied, rel=UTILISATION_TOLERANCE)
    simulated = utilisation_by_window(ran, w.t0, w.max_procs)
    traced = utilisation_by_window(w.traced_runs(), w.t0, w.max_procs)
    assert len(simulated) == len(traced) >= 3
    assert max(abs(a - b) for a, b in zip(simulated, traced)) <= MONTHLY_TOLERANCE
    assert r.node_hours >= r.lower_bound_node_hours


@needs_traces
@pytest.mark.parametrize("path", TRACES, ids=ids)
def test_skipping_quiet_cycles_changes_nothing(path):
    """Cycles in which nothing changed and no timer ran out are skipped; calling
    the policy on every cycle instead must give exactly the same run."""
    w = experiment.load(path, max_days=1.5)
    cloud = CloudModel()
    for policy, config in (("dcaas", None), ("dcaas", {"wlm": {"nodes": "cloud"}}), ("legacy", None)):
        fast = experiment.run(w, policy, cloud, seed=5, dcaas_config=config)
        slow = experiment.run(w, policy, cloud, seed=5, every_cycle=True, dcaas_config=config)
        assert slow.stats["cycles_looked"] == slow.stats["cycles"] > fast.stats["cycles_looked"]
        a, b = fast.row(), slow.row()
        for key in ("wall_s", "cpu_s", "cycles_looked", "decide_calls", "decide_seconds", "decide_max_ms"):
            a.pop(key, None)
            b.pop(key, None)
        assert a == b, policy
        assert fast.timeline == slow.timeline


@needs_traces
def test_runs_are_deterministic_and_seeded():
    w = experiment.load(TRACES[0], max_days=2)
    a = experiment.run(w, "dcaas", seed=1)
    b = experiment.run(w, "dcaas", seed=1)
    c = experiment.run(w, "dcaas", seed=2)
    assert a.timeline == b.timeline and a.node_hours == b.node_hours
    assert a.timeline != c.timeline


@needs_traces
@pytest.mark.parametrize("nodes", ["dynamic", "cloud"])
@pytest.mark.parametrize("path", TRACES, ids=ids)
def test_the_engine_sees_every_node_as_it_is(path, nodes):
    """The dcaas controller updates only the views of nodes the simulation
    reports as changed, and builds them without Node's __init__. At every
    pass its view must equal views built afresh, with the real constructor,
    from every simulated node. Launch failures are frequent here so that
    failed, drained and deleted nodes all occur."""
    w = experiment.load(path, max_days=1.5)
    controller = Dcaas({"wlm": {"nodes": nodes}})
    seen = {"passes": 0, "states": set()}
    observe = controller.observe

    def checked_observe():
        observed = observe()
        fresh = tuple(Node(**vars(controller._node_view(n))) for n in controller.sim.nodes.values())
        assert observed.nodes == fresh
        seen["passes"] += 1
        seen["states"].update(n.state for n in fresh)
        return observed

    controller.observe = checked_observe
    Simulation(w, controller, CloudModel(failure_rate=0.2), seed=3).run()
    assert seen["passes"] > 50
    # Under cloud nodes a failed boot goes back to off at once (the WLM
    # requeues its jobs), so the engine never sees it down.
    last = NodeState.OFF if nodes == "cloud" else NodeState.DOWN
    assert seen["states"] >= {NodeState.STARTING, NodeState.IDLE, NodeState.BUSY, last}


@needs_traces
def test_cloud_nodes_start_jobs_as_power_saving_does():
    """Cloud nodes with pre-warm off, on 3 days of NASA (whose plans never
    allow an early power-down), with boots that never vary or fail: the
    engine must start every job when Slurm's own power saving does, with
    as many boots. It differed while a job run between two passes did not
    restart a node's idle clock. The spare and quiet resources (which make
    the engine start jobs earlier on purpose) are off: timers.quiet 0."""
    paths = [p for p in TRACES if "NASA" in os.path.basename(p)]
    if not paths:
        pytest.skip("no NASA trace")
    w = experiment.load(paths[0], max_days=3)
    cloud = CloudModel(boot_delay=60.0, boot_jitter=0.0, failure_rate=0.0)
    power_saving = Simulation(w, PowerSave(), cloud).run()
    engine = Simulation(w, Dcaas({"wlm": {"nodes": "cloud"}, "timers": {"prewarm": 0, "quiet": 0}}), cloud).run()
    assert len(engine.jobs) > 200
    assert [j.start for j in engine.jobs] == [j.start for j in power_saving.jobs]
    assert engine.launches == power_saving.launches
