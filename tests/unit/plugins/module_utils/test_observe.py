"""Joining cloud instances with WLM nodes."""

from __future__ import annotations

from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Instance,
    InstanceStatus,
    Job,
    NodeState,
    Resource,
    WlmNode,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.naming import DRAIN_REASON_PREFIX
from ansible_collections.dcaas.cluster.plugins.module_utils.observe import merge

RES = [Resource("small", "m1", "img", cores=4, memory_mb=8000)]


def inst(name, status=InstanceStatus.ACTIVE, **kw):
    return Instance(id=f"id-{name}", name=name, resource="small", status=status, created=1.0, **kw)


def test_instance_not_in_wlm_is_starting_with_flavor_size():
    obs = merge([inst("c-small-1")], [], [], RES, "c")
    (n,) = obs.nodes
    assert (n.state, n.cores, n.memory_mb, n.in_wlm) == (NodeState.STARTING, 4, 8000, False)


def test_wlm_states_map_and_wlm_size_wins():
    wlm = [
        WlmNode("c-small-1", "idle", cores=2, memory_mb=1000, address="10.0.0.9"),
        WlmNode("c-small-2", "busy", cores=4, cores_alloc=4),
        WlmNode("c-small-3", "drained", reason=f"{DRAIN_REASON_PREFIX} idle for 700s"),
        WlmNode("c-small-4", "draining", reason="admin: bad dimm"),
        WlmNode("c-small-5", "down", reason="Not responding"),
    ]
    obs = merge([inst(w.name, address="10.0.0.1") for w in wlm], wlm, [], RES, "c")
    by = {n.name: n for n in obs.nodes}
    assert by["c-small-1"].state is NodeState.IDLE and by["c-small-1"].cores == 2
    assert by["c-small-1"].address == "10.0.0.1"  # the instance's address is the truth
    assert by["c-small-2"].state is NodeState.BUSY
    assert by["c-small-3"].state is NodeState.DRAINING and by["c-small-3"].drained_by_us
    assert by["c-small-4"].state is NodeState.DRAINING and not by["c-small-4"].drained_by_us
    assert by["c-small-5"].state is NodeState.DOWN and by["c-small-5"].reason == "Not responding"


def test_failed_instance_is_down_with_fault():
    obs = merge([inst("c-small-1", InstanceStatus.ERROR, fault="NoValidHost")], [], [], RES, "c")
    assert obs.nodes[0].state is NodeState.DOWN and obs.nodes[0].reason == "NoValidHost"


def test_running_jobs_attach_to_nodes_and_make_them_busy():
    jobs = [Job("7", "running", node_names=("c-small-1",))]
    obs = merge([inst("c-small-1")], [WlmNode("c-small-1", "idle")], jobs, RES, "c")
    assert obs.nodes[0].jobs == ("7",) and obs.nodes[0].state is NodeState.BUSY


def test_stale_wlm_nodes_only_ours_and_only_without_jobs():
    wlm = [
        WlmNode("c-small-9", "down", features=frozenset({"dcaas"})),
        WlmNode("c-small-8", "busy", features=frozenset({"dcaas"}), jobs=("3",)),
        WlmNode("static01", "idle"),
        WlmNode("other-small-1", "down", features=frozenset({"dcaas"})),
    ]
    assert merge([], wlm, [], RES, "c").stale_wlm_nodes == ("c-small-9",)


def test_instances_of_other_roles_are_not_workers():
    obs = merge([Instance("h", "c-head", "none", InstanceStatus.ACTIVE, 1.0, role="head")], [], [], RES, "c")
    assert obs.nodes == ()


def test_moved_instance_is_reported_for_an_address_update():
    wlm = [WlmNode("c-small-1", "down", address="10.0.0.9"), WlmNode("c-small-2", "idle", address="c-small-2")]
    obs = merge([inst("c-small-1", address="10.0.0.4"), inst("c-small-2", address="10.0.0.5")], wlm, [], RES, "c")
    # Only an IP the WLM pinned goes stale; a host name is resolved anew.
    assert obs.moved == (("c-small-1", "10.0.0.4"),)


# --- cloud nodes (wlm.nodes: cloud) -------------------------------------------


def cloud_merge(instances, wlm, jobs=()):
    obs = merge(instances, wlm, jobs, RES, "c", cloud_nodes=True)
    return obs, {n.name: n for n in obs.nodes}


def test_cloud_nodes_without_instance_are_off_with_the_jobs_placed_on_them():
    wlm = [
        WlmNode("c-small-1", "off", cores=4),
        WlmNode("c-small-2", "powering_up", cores=4, cores_alloc=4),
        WlmNode("c-small-3", "powering_down"),
        WlmNode("c-small-4", "down", reason="ResumeTimeout reached"),
        WlmNode("c-small-5", "idle"),  # up in the WLM, no instance: left alone
        WlmNode("c-other-1", "off"),  # no such resource
        WlmNode("x-small-1", "off"),  # not this cluster
    ]
    jobs = [Job("7", "running", node_names=("c-small-2",))]
    obs, nodes = cloud_merge([], wlm, jobs)
    assert {k: n.state for k, n in nodes.items()} == {
        "c-small-1": NodeState.OFF,
        "c-small-2": NodeState.OFF,
        "c-small-3": NodeState.DELETING,
        "c-small-4": NodeState.DOWN,
    }
    assert nodes["c-small-2"].jobs == ("7",) and nodes["c-small-1"].jobs == ()
    assert all(n.in_wlm and n.instance_id is None and n.resource == "small" for n in nodes.values())
    assert nodes["c-small-4"].reason == "ResumeTimeout reached"
    assert obs.stale_wlm_nodes == () and obs.powered_off == ()


def test_cloud_node_instances_booting_up_and_going_off():
    wlm = [
        WlmNode("c-small-1", "powering_up"),
        WlmNode("c-small-2", "powering_up"),
        WlmNode("c-small-3", "idle"),
        WlmNode("c-small-4", "powering_down"),
        WlmNode("c-small-5", "off"),
    ]
    instances = [
        inst("c-small-1"),
        inst("c-small-2", InstanceStatus.ERROR, fault="NoValidHost"),
        inst("c-small-3"),
        inst("c-small-4"),
        inst("c-small-5"),
    ]
    obs, nodes = cloud_merge(instances, wlm)
    # Booting: not in the WLM yet (its boot and failure rules apply).
    assert (nodes["c-small-1"].state, nodes["c-small-1"].in_wlm) == (NodeState.STARTING, False)
    assert (nodes["c-small-2"].state, nodes["c-small-2"].in_wlm) == (NodeState.DOWN, False)
    assert nodes["c-small-3"].state is NodeState.IDLE
    # Powered down in the WLM while the instance still runs: it goes.
    assert obs.powered_off == ("c-small-4", "c-small-5")
    assert nodes["c-small-4"].state is NodeState.DELETING


def test_a_new_instance_wins_over_the_old_one_being_deleted():
    old = inst("c-small-1", InstanceStatus.DELETING)
    new = Instance(id="id-new", name="c-small-1", resource="small", status=InstanceStatus.BUILDING, created=9.0)
    _obs, nodes = cloud_merge([old, new], [WlmNode("c-small-1", "powering_up")])
    assert nodes["c-small-1"].instance_id == "id-new"


def test_dynamic_mode_keeps_treating_unknown_nodes_as_stale():
    obs = merge([], [WlmNode("c-small-1", "idle")], [], RES, "c")
    assert obs.stale_wlm_nodes == ("c-small-1",) and obs.nodes == ()


def test_running_jobs_on_nodes_the_wlm_does_not_list_are_contradictions():
    # An empty node list (Slurm 24.11's sinfo read as 22.05's) next to a job
    # list that runs jobs on our instances: one of the answers is wrong.
    running = [Job("7", "running", node_names=("c-small-1",)), Job("8", "running", node_names=())]
    obs = merge([inst("c-small-1"), inst("c-small-2")], [], running, RES, "c")
    assert obs.contradictions == (
        "job 8 runs on no node the WLM names",
        "job 7 runs on c-small-1, which the WLM's node list does not show",
    )
    many = [Job(str(i), "running", node_names=(f"x{i}",)) for i in range(10)]
    assert merge([], [], many, RES, "c").contradictions[-1] == "and 7 more"


def test_answers_that_agree_have_no_contradictions():
    wlm = [WlmNode("c-small-1", "busy", cores_alloc=1), WlmNode("static-1", "busy")]
    jobs = [Job("7", "running", node_names=("c-small-1", "static-1")), Job("9", "pending")]
    assert merge([inst("c-small-1"), inst("c-small-2")], wlm, jobs, RES, "c").contradictions == ()
