"""The act phase of a reconcile pass.

The WLM and the cloud here are in-memory fakes of the engine's two seams
(WorkloadManager and CloudProvider): they let the tests force failures that
real Slurm and podman produce only by chance. The real adapters are tested
against real daemons in tests/integration and the provider tests.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError, CloudProvider
from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import Engine, node_name
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    DRAIN_REASON_PREFIX,
    Controls,
    Instance,
    InstanceStatus,
    Job,
    Timers,
    WlmNode,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError, Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import WorkloadManager

NOW = 50_000.0


class FakeWlm(WorkloadManager):
    def __init__(self):
        super().__init__(Runner())
        self.job_list: list[Job] = []
        self.node_list: dict[str, WlmNode] = {}
        self.calls: list[tuple] = []
        self.refuse_remove: set[str] = set()

    def jobs(self):
        return list(self.job_list)

    def nodes(self):
        return list(self.node_list.values())

    def drain(self, node, reason):
        self.calls.append(("drain", node, reason))

    def resume(self, node):
        self.calls.append(("resume", node))

    def update_address(self, node, address):
        self.calls.append(("update_address", node, address))

    def remove(self, node):
        if node in self.refuse_remove:
            raise CommandError(["scontrol", "delete", f"nodename={node}"], 1, "", "Node has jobs")
        self.calls.append(("remove", node))
        self.node_list.pop(node, None)

    def join_config(self, resource, node_name):
        return {"write_files": [], "runcmd": [["echo", node_name]]}


class FakeCloud(CloudProvider):
    def __init__(self, full: set[str] = frozenset()):
        super().__init__("t")
        self.instances: dict[str, Instance] = {}
        self.full = set(full)
        self.created: list[tuple[str, str]] = []
        self.deleted: list[str] = []

    def list_instances(self):
        return list(self.instances.values())

    def create(self, spec):
        if spec.resource.name in self.full:
            raise CloudError("quota", f"quota exceeded for {spec.resource.name}")
        assert spec.labels["dcaas.cluster"] == "t" and spec.user_data.startswith("#cloud-config")
        inst = Instance(f"id-{spec.name}", spec.name, spec.resource.name, InstanceStatus.BUILDING, NOW)
        self.instances[spec.name] = inst
        self.created.append((spec.resource.name, spec.name))
        return inst

    def delete(self, instance):
        self.deleted.append(instance.name)
        self.instances.pop(instance.name, None)


CONFIG = {
    "cluster": "t",
    "resources": [
        {"name": "a", "flavor": "f", "image": "i", "cores": 4, "memory_mb": 8000, "priority": 1},
        {"name": "b", "flavor": "f", "image": "i", "cores": 4, "memory_mb": 8000, "priority": 2},
    ],
}


@pytest.fixture
def world(tmp_path):
    cfg = parse({**CONFIG, "state_file": str(tmp_path / "state.json")})
    wlm, cloud = FakeWlm(), FakeCloud()
    engine = Engine(cfg, wlm, cloud, StateStore(cfg.state_file), clock=lambda: NOW)
    return engine, wlm, cloud


# --- cloud nodes (wlm.nodes: cloud) -------------------------------------------


class CloudWlm(FakeWlm):
    """Slurm with cloud nodes t-a-1..3: power_down turns an idle node powering_down;
    a node that got a job in the meantime stays up (Slurm queues its power-down)."""

    def __init__(self):
        super().__init__()
        self.node_list = {f"t-a-{i}": WlmNode(f"t-a-{i}", "off", cores=4) for i in (1, 2, 3)}
        self.busy_meanwhile: set[str] = set()

    def power_down(self, node, force=False):
        self.calls.append(("power_down", node, force))
        if node not in self.busy_meanwhile:
            self.node_list[node] = WlmNode(node, "powering_down", cores=4)

    def power_up(self, node):
        self.calls.append(("power_up", node))
        if self.node_list[node].state != "off":
            raise CommandError(["scontrol"], 1, "", "only off nodes are powered up here")
        self.node_list[node] = WlmNode(node, "powering_up", cores=4)


@pytest.fixture
def cloud_world(tmp_path):
    cfg = parse(
        {
            **CONFIG,
            "resources": [{**CONFIG["resources"][0], "max": 3}],
            "wlm": {"nodes": "cloud"},
            "timers": {"idle_timeout": 60, "prewarm": 0},
            "state_file": str(tmp_path / "state.json"),
        }
    )
    wlm, cloud = CloudWlm(), FakeCloud()
    return cfg, wlm, cloud, Engine(cfg, wlm, cloud, StateStore(cfg.state_file), clock=lambda: NOW)


def test_cloud_nodes_power_up_under_the_names_slurm_placed_jobs_on(cloud_world):
    _cfg, wlm, cloud, engine = cloud_world
    wlm.node_list["t-a-2"] = WlmNode("t-a-2", "powering_up", cores=4, cores_alloc=4)
    wlm.job_list = [Job("7", "running", cores=4, node_names=("t-a-2",))]
    result = engine.run_once()
    assert not result.errors and result.launched == ["t-a-2"] and cloud.created == [("a", "t-a-2")]
    assert wlm.calls == []  # Slurm powers it up itself: no POWER_UP from the engine
    # Next pass: the instance boots, Slurm still waits for it; nothing more.
    assert engine.run_once().launched == []


def test_cloud_node_without_a_job_is_powered_up_in_slurm_before_its_instance_starts(cloud_world):
    cfg, wlm, cloud, engine = cloud_world
    engine.config = replace(cfg, resources=(replace(cfg.resources[0], min=1),))
    result = engine.run_once()
    assert not result.errors and result.launched == ["t-a-1"]
    assert wlm.calls == [("power_up", "t-a-1")] and cloud.created == [("a", "t-a-1")]
    # Next pass: Slurm lists it powering up, so the booting instance is kept.
    again = engine.run_once()
    assert again.launched == [] and cloud.deleted == [] and not again.done


def test_cloud_node_powered_up_for_nothing_is_powered_down_when_its_instance_fails(cloud_world):
    cfg, wlm, cloud, engine = cloud_world
    engine.config = replace(cfg, resources=(replace(cfg.resources[0], min=1),))
    cloud.full = {"a"}
    result = engine.run_once()
    assert result.launched == [] and "quota exceeded" in result.errors[0]
    assert wlm.calls == [("power_up", "t-a-1"), ("power_down", "t-a-1", True)]


def test_idle_cloud_node_is_powered_down_then_its_instance_deleted(cloud_world):
    _cfg, wlm, cloud, engine = cloud_world
    cloud.instances["t-a-1"] = Instance("id-t-a-1", "t-a-1", "a", InstanceStatus.ACTIVE, NOW - 3600)
    wlm.node_list["t-a-1"] = WlmNode("t-a-1", "idle", cores=4, last_busy=NOW - 600)
    engine.store.save(Timers(idle_since={"t-a-1": NOW - 600}), Controls())  # idle for 10 minutes
    result = engine.run_once()
    assert ("power_down", "t-a-1", False) in wlm.calls
    assert cloud.deleted == ["t-a-1"]
    assert [d["action"] for d in result.done] == ["power_down", "delete_instance"]


def test_instance_stays_when_slurm_placed_a_job_before_the_power_down(cloud_world):
    _cfg, wlm, cloud, engine = cloud_world
    cloud.instances["t-a-1"] = Instance("id-t-a-1", "t-a-1", "a", InstanceStatus.ACTIVE, NOW - 3600)
    wlm.node_list["t-a-1"] = WlmNode("t-a-1", "idle", cores=4, last_busy=NOW - 600)
    engine.store.save(Timers(idle_since={"t-a-1": NOW - 600}), Controls())  # idle for 10 minutes
    wlm.busy_meanwhile = {"t-a-1"}
    engine.run_once()
    assert ("power_down", "t-a-1", False) in wlm.calls and cloud.deleted == []


def test_instance_of_a_node_slurm_powered_down_is_deleted_unless_frozen(cloud_world):
    _cfg, _wlm, cloud, engine = cloud_world
    cloud.instances["t-a-3"] = Instance("id-t-a-3", "t-a-3", "a", InstanceStatus.ACTIVE, NOW - 3600)
    engine.store.save(Timers(), Controls(frozen=True))
    engine.run_once()
    assert cloud.deleted == []
    engine.store.save(Timers(), Controls())
    result = engine.run_once()
    assert cloud.deleted == ["t-a-3"] and result.done == [
        {"action": "delete_instance", "node": "t-a-3", "reason": "the WLM powered it down"}
    ]


def test_failed_boot_is_powered_down_with_force(cloud_world):
    _cfg, wlm, cloud, engine = cloud_world
    cloud.instances["t-a-1"] = Instance("id-t-a-1", "t-a-1", "a", InstanceStatus.ERROR, NOW - 10, fault="NoValidHost")
    wlm.node_list["t-a-1"] = WlmNode("t-a-1", "powering_up", cores=4, cores_alloc=4)
    wlm.job_list = [Job("7", "running", cores=4, node_names=("t-a-1",))]
    engine.run_once()
    # Its job goes back to the queue; Slurm places it again (the resource backs off).
    assert ("power_down", "t-a-1", True) in wlm.calls and cloud.deleted == ["t-a-1"]


def test_cloud_mode_without_cloud_nodes_in_slurm_says_how_to_fix_it(cloud_world):
    _cfg, wlm, _cloud, engine = cloud_world
    wlm.node_list = {}
    result = engine.run_once()
    assert any("head_node_cloud_nodes: cloud" in w and "t-a-<n>" in w for w in result.warnings), result.warnings


def test_launches_for_pending_jobs_and_saves_state(world):
    engine, wlm, cloud = world
    wlm.job_list = [Job(str(i), "pending") for i in range(5)]
    result = engine.run_once()
    assert [res for res, _name in cloud.created] == ["a", "a"] and result.changed
    assert len(result.launched) == 2
    # Same queue next pass: the booting instances cover it.
    assert engine.run_once().launched == []


def test_launch_failure_backs_off_and_falls_through_in_the_same_pass(world):
    engine, wlm, cloud = world
    cloud.full = {"a"}
    wlm.job_list = [Job("1", "pending")]
    result = engine.run_once()
    assert [res for res, _name in cloud.created] == ["b"]
    assert any("quota exceeded for a" in e for e in result.errors)
    backoff = engine.store.load()[0].backoff["a"]
    assert backoff.failures == 1 and backoff.until == NOW + engine.config.timers.backoff_initial


def test_drain_uses_the_engine_reason_prefix(world):
    engine, wlm, cloud = world
    cloud.instances["t-a-1"] = Instance("id1", "t-a-1", "a", InstanceStatus.ACTIVE, 0.0)
    wlm.node_list["t-a-1"] = WlmNode("t-a-1", "idle")
    engine.store.save(Timers(idle_since={"t-a-1": 0.0}), Controls())
    engine.run_once()
    assert wlm.calls[0][:2] == ("drain", "t-a-1") and wlm.calls[0][2].startswith(DRAIN_REASON_PREFIX)


def test_delete_removes_from_wlm_first_and_stops_if_the_wlm_refuses(world):
    engine, wlm, cloud = world
    for name in ("t-a-1", "t-a-2"):
        cloud.instances[name] = Instance(f"id-{name}", name, "a", InstanceStatus.ACTIVE, 0.0)
        wlm.node_list[name] = WlmNode(name, "drained", reason=f"{DRAIN_REASON_PREFIX} idle")
    wlm.refuse_remove = {"t-a-2"}
    result = engine.run_once()
    assert cloud.deleted == ["t-a-1"] and ("remove", "t-a-1") in wlm.calls
    assert "t-a-2" in cloud.instances  # the WLM said no: the instance stays
    assert any("t-a-2" in e and "Node has jobs" in e for e in result.errors)


def test_check_mode_and_auto_off_change_nothing(world, tmp_path):
    engine, wlm, cloud = world
    wlm.job_list = [Job("1", "pending")]
    result = engine.run_once(check_mode=True)
    assert result.plan.launches and not cloud.created and not (tmp_path / "state.json").exists()
    engine.store.save(Timers(), Controls(auto=False))
    result = engine.run_once()
    assert not cloud.created and result.warnings == ["auto mode is off: the plan was not carried out"]


def test_node_names_are_valid_hostnames():
    name = node_name("c" * 31, "r" * 31)
    assert len(name) <= 63 and name.startswith("c" * 31 + "-")
    assert node_name("demo", "small") != node_name("demo", "small")


def test_failed_boot_backs_off_its_resource_and_replacement_goes_elsewhere(world):
    engine, wlm, cloud = world
    cloud.instances["t-a-1"] = Instance("id1", "t-a-1", "a", InstanceStatus.ERROR, NOW - 5, fault="NoValidHost")
    wlm.job_list = [Job("1", "pending")]
    result = engine.run_once()
    assert cloud.deleted == ["t-a-1"]
    assert [res for res, _name in cloud.created] == ["b"]
    assert "NoValidHost" in engine.store.load()[0].backoff["a"].last_error
    assert any(d["action"] == "delete" for d in result.done)


def test_several_failed_boots_in_one_pass_count_as_one_failure(world):
    engine, _wlm, cloud = world
    for n in range(3):
        name = f"t-a-{n}"
        cloud.instances[name] = Instance(f"id{n}", name, "a", InstanceStatus.ERROR, NOW - 5, fault="NoValidHost")
    engine.run_once()
    backoff = engine.store.load()[0].backoff["a"]
    assert backoff.failures == 1
    assert backoff.until == NOW + engine.config.timers.backoff_initial
    assert "and 2 more in this pass" in backoff.last_error
    assert sorted(cloud.deleted) == ["t-a-0", "t-a-1", "t-a-2"]


def test_worker_back_on_a_new_address_is_repointed(world):
    engine, wlm, cloud = world
    cloud.instances["t-a-1"] = Instance("id1", "t-a-1", "a", InstanceStatus.ACTIVE, 0.0, address="10.0.0.7")
    wlm.node_list["t-a-1"] = WlmNode("t-a-1", "down", address="10.0.0.3", reason="Not responding")
    result = engine.run_once()
    assert ("update_address", "t-a-1", "10.0.0.7") in wlm.calls
    assert {"action": "update_address", "node": "t-a-1", "reason": "now at 10.0.0.7"} in result.done
