"""The act phase of a reconcile pass.

The WLM and the cloud here are in-memory fakes of the engine's two seams
(WorkloadManager and CloudProvider): they let the tests force failures that
real Slurm and podman produce only by chance. The real adapters are tested
against real daemons in tests/integration and the provider tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError, CloudProvider
from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import Engine
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Controls,
    Instance,
    InstanceStatus,
    Job,
    Timers,
    WlmNode,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.naming import DRAIN_REASON_PREFIX, worker_name
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError, Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import Capability, WorkloadManager

NOW = 50_000.0


class FakeWlm(WorkloadManager):
    def __init__(self):
        super().__init__(Runner())
        self.job_list: list[Job] = []
        self.node_list: dict[str, WlmNode] = {}
        self.calls: list[tuple] = []
        self.refuse_remove: set[str] = set()

    # What the WLM shows from its second look on, within one pass (jobs that
    # started since the engine looked), or that it stops answering then.
    jobs_after_first_look: tuple[Job, ...] | list[Job] = ()
    fail_after_first_look = False
    looks = 0

    def jobs(self):
        self.looks += 1
        if self.looks > 1 and self.fail_after_first_look:
            raise CommandError(["squeue", "--json"], 1, "", "slurm_load_jobs error: Unable to contact slurm controller")
        return list(self.job_list) + (list(self.jobs_after_first_look) if self.looks > 1 else [])

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


def make_world(tmp_path, wlm):
    cfg = parse({**CONFIG, "state_file": str(tmp_path / "state.json")})
    cloud = FakeCloud()
    engine = Engine(cfg, wlm, cloud, StateStore(cfg.state_file), clock=lambda: NOW)
    return engine, wlm, cloud


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path, FakeWlm())


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


def test_cloud_mode_without_cloud_nodes_in_the_wlm_says_how_to_fix_it_in_the_adapters_words(cloud_world):
    _cfg, wlm, _cloud, engine = cloud_world
    wlm.node_list = {}
    wlm.cloud_nodes_hint = lambda: "declare them here"
    result = engine.run_once()
    assert any("resource 'a' (t-a-[1-3]): declare them here" in w for w in result.warnings), result.warnings


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


def test_delete_takes_the_instance_first_and_keeps_a_node_that_took_a_job_since_the_look(world):
    engine, wlm, cloud = world
    for name in ("t-a-1", "t-a-2"):
        cloud.instances[name] = Instance(f"id-{name}", name, "a", InstanceStatus.ACTIVE, 0.0)
        wlm.node_list[name] = WlmNode(name, "drained", reason=f"{DRAIN_REASON_PREFIX} idle")
    # What only the fresh look before deleting shows: a job on t-a-2.
    wlm.jobs_after_first_look = [Job("9", "running", node_names=("t-a-2",))]
    result = engine.run_once()
    assert cloud.deleted == ["t-a-1"] and ("remove", "t-a-1") in wlm.calls
    assert "t-a-2" in cloud.instances and ("remove", "t-a-2") not in wlm.calls
    assert [d["node"] for d in result.done if d["action"] == "delete"] == ["t-a-1"]


def test_an_engine_stopped_between_delete_and_forget_leaves_no_live_server_behind(world):
    # The instance goes first: if the WLM step fails (or the engine dies
    # there), what is left is a WLM node with no instance, which the next
    # pass forgets; never a live server the WLM does not list.
    engine, wlm, cloud = world
    cloud.instances["t-a-1"] = Instance("id-1", "t-a-1", "a", InstanceStatus.ACTIVE, 0.0)
    wlm.node_list["t-a-1"] = WlmNode("t-a-1", "drained", reason=f"{DRAIN_REASON_PREFIX} idle", features=frozenset())
    wlm.refuse_remove = {"t-a-1"}
    result = engine.run_once()
    assert cloud.deleted == ["t-a-1"] and not cloud.instances
    assert any("t-a-1" in e for e in result.errors)
    wlm.refuse_remove = set()
    result = engine.run_once()
    assert ("remove", "t-a-1") in wlm.calls and {"action": "forget", "node": "t-a-1"}.items() <= result.done[0].items()


def test_nothing_is_deleted_when_the_look_before_deleting_fails(world):
    engine, wlm, cloud = world
    cloud.instances["t-a-1"] = Instance("id-1", "t-a-1", "a", InstanceStatus.ACTIVE, 0.0)
    wlm.node_list["t-a-1"] = WlmNode("t-a-1", "drained", reason=f"{DRAIN_REASON_PREFIX} idle")
    wlm.fail_after_first_look = True
    result = engine.run_once()
    assert not cloud.deleted and any("re-read the WLM before deleting" in e for e in result.errors)


def test_check_mode_and_auto_off_change_nothing(world, tmp_path):
    engine, wlm, cloud = world
    wlm.job_list = [Job("1", "pending")]
    result = engine.run_once(check_mode=True)
    assert result.plan.launches and not cloud.created and not (tmp_path / "state.json").exists()
    engine.store.save(Timers(), Controls(auto=False))
    result = engine.run_once()
    assert not cloud.created and result.warnings == ["auto mode is off: the plan was not carried out"]


def test_node_names_are_valid_hostnames():
    name = worker_name("c" * 31, "r" * 31)
    assert len(name) <= 63 and name.startswith("c" * 31 + "-")
    assert worker_name("demo", "small") != worker_name("demo", "small")


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


# --- safety under bad input (issue 13) -------------------------------------------


def test_a_wlm_that_lists_no_nodes_while_jobs_run_deletes_nothing(world):
    # Slurm 24.11's sinfo --json has no 'nodes' list; an adapter that read
    # it as "no nodes" made every worker look like one that never joined.
    engine, wlm, cloud = world
    for name in ("t-a-1", "t-a-2", "t-a-3"):
        cloud.instances[name] = Instance(f"id-{name}", name, "a", InstanceStatus.ACTIVE, 0.0)
    wlm.job_list = [Job("7", "running", node_names=("t-a-1",)), Job("8", "running", node_names=("t-a-2",))]
    result = engine.run_once()
    assert not cloud.deleted and not [c for c in wlm.calls if c[0] in ("drain", "remove")]
    assert result.protected and "t-a-1" in result.protected[0]
    assert result.to_dict()["protected"] == list(result.protected)
    assert any(w.startswith("protected mode") for w in result.warnings)
    # Answers that agree again end protected mode by themselves.
    for name in ("t-a-1", "t-a-2", "t-a-3"):
        wlm.node_list[name] = WlmNode(name, "idle")
    wlm.job_list = []
    engine.store.save(Timers(idle_since=dict.fromkeys(("t-a-1", "t-a-2", "t-a-3"), 0.0)), Controls())
    result = engine.run_once()
    assert not result.protected and sorted(c[1] for c in wlm.calls if c[0] == "drain") == ["t-a-1", "t-a-2", "t-a-3"]


def test_a_node_the_wlm_refuses_to_name_is_skipped_and_the_others_go_on(world):
    engine, wlm, cloud = world

    def drain(node, reason):
        if node == "t-a-1":
            raise ValueError(f"{node!r} is not a single Slurm node name")
        wlm.calls.append(("drain", node, reason))

    wlm.drain = drain
    for name in ("t-a-1", "t-a-2"):
        cloud.instances[name] = Instance(f"id-{name}", name, "a", InstanceStatus.ACTIVE, 0.0)
        wlm.node_list[name] = WlmNode(name, "idle")
    engine.store.save(Timers(idle_since={"t-a-1": 0.0, "t-a-2": 0.0}), Controls())
    result = engine.run_once()
    assert [c[1] for c in wlm.calls if c[0] == "drain"] == ["t-a-2"]
    assert any("t-a-1" in e and "ValueError" in e for e in result.errors)


class FailingBootCloud(FakeCloud):
    """Every server of resource 'a' is accepted, then goes to ERROR (NoValidHost)."""

    def list_instances(self):
        failed = {"status": InstanceStatus.ERROR, "fault": "No valid host was found"}
        return [replace(i, **failed) if i.resource == "a" else i for i in self.instances.values()]


def test_a_resource_whose_servers_never_boot_costs_one_server_per_backoff_step(tmp_path):
    config = {**CONFIG, "resources": [CONFIG["resources"][0]], "state_file": str(tmp_path / "s.json")}
    config["timers"] = {"interval": 30, "backoff_initial": 60, "backoff_max": 480}
    cfg = parse(config)
    clock = [NOW]
    wlm, cloud = FakeWlm(), FailingBootCloud()
    engine = Engine(cfg, wlm, cloud, StateStore(cfg.state_file), clock=lambda: clock[0])
    wlm.job_list = [Job("1", "pending")]
    failures = []
    for _pass in range(120):  # an hour of passes
        engine.run_once()
        backoff = engine.store.load()[0].backoff.get("a")
        failures.append(backoff.failures if backoff else 0)
        clock[0] += 30
    # Back-offs of 60, 120, 240, then 480 s: 1 + 3 + (3600 - 420) / 480 steps at most.
    assert len(cloud.created) <= 1 + 3 + 7
    assert max(failures) >= 4


def test_a_backoff_survives_the_cloud_dropping_after_a_failed_launch(world):
    engine, wlm, cloud = world
    cloud.full = {"a"}
    wlm.job_list = [Job("1", "pending")]
    real_list = cloud.list_instances
    calls = [0]

    def list_instances():
        calls[0] += 1
        if calls[0] > 1:
            raise CloudError("unreachable", "podman API: connection refused")
        return real_list()

    cloud.list_instances = list_instances
    result = engine.run_once()
    assert engine.store.load()[0].backoff["a"].failures == 1
    assert any("re-read after a failed launch" in e for e in result.errors)


def test_a_worker_that_leaves_the_node_list_unremoved_puts_the_engine_in_protected_mode(world):
    engine, wlm, cloud = world
    cloud.instances["t-a-1"] = Instance("id-1", "t-a-1", "a", InstanceStatus.ACTIVE, 0.0)
    wlm.node_list["t-a-1"] = WlmNode("t-a-1", "busy", jobs=("5",))
    engine.run_once()
    assert engine.store.load()[0].joined == {"t-a-1": NOW}
    # squeue and sinfo both cut short: they agree, and the worker looks new.
    wlm.node_list.clear()
    result = engine.run_once()
    assert not cloud.deleted and result.protected == ("t-a-1: joined the WLM, and its node list no longer shows them",)
    # An admin deletes the instance: nothing is left to protect.
    del cloud.instances["t-a-1"]
    result = engine.run_once()
    assert not result.protected and engine.store.load()[0].joined == {}


def test_dropping_a_resource_whose_instances_the_cloud_no_longer_lists_is_refused(tmp_path):
    # On OpenStack a resource's project is listed only while a resource uses
    # it: dropping the resource would hide its servers for good.
    state = str(tmp_path / "state.json")
    wlm, cloud = FakeWlm(), FakeCloud()
    cloud.instances["t-b-1"] = Instance("id-b1", "t-b-1", "b", InstanceStatus.ACTIVE, 0.0, tenant="physics")
    wlm.node_list["t-b-1"] = WlmNode("t-b-1", "idle")
    Engine(parse({**CONFIG, "state_file": state}), wlm, cloud, StateStore(state), clock=lambda: NOW).run_once()
    assert StateStore(state).load()[0].homes == {"b": "physics"}

    only_a = parse({**CONFIG, "resources": [CONFIG["resources"][0]], "state_file": state})
    hidden = FakeCloud()  # lists nothing of project physics any more
    with pytest.raises(CloudError, match=r"resource 'b' in project 'physics'.*cloud\.options\.tenants"):
        Engine(only_a, wlm, hidden, StateStore(state), clock=lambda: NOW).run_once()
    # Where the instance is still listed, the policy retires it as usual.
    result = Engine(only_a, wlm, cloud, StateStore(state), clock=lambda: NOW).run_once()
    assert [(d["action"], d["node"]) for d in result.done] == [("drain", "t-b-1")]


def test_the_homes_refusal_says_how_to_forget_instances_known_gone_and_doing_so_clears_it(tmp_path):
    state = str(tmp_path / "state.json")
    StateStore(state).save(Timers(homes={"a": "", "b": "physics"}), Controls())
    only_a = parse({**CONFIG, "resources": [CONFIG["resources"][0]], "state_file": state})
    engine = Engine(only_a, FakeWlm(), FakeCloud(), StateStore(state), clock=lambda: NOW)
    with pytest.raises(CloudError) as refused:
        engine.run_once()
    # Follow the message to the letter: the file and the key it names.
    match = re.search(
        r'delete ("[^"]*") from timers\.homes in the state file (\S+), and start it again$', str(refused.value)
    )
    assert match and match.group(2) == state
    data = json.loads(Path(state).read_text())
    del data["timers"]["homes"][json.loads(match.group(1))]
    Path(state).write_text(json.dumps(data))
    assert not engine.run_once().errors
    assert StateStore(state).load()[0].homes == {}  # "a" has no instance either: nothing to remember


def test_the_homes_refusal_names_a_few_of_many_lost_resources(tmp_path):
    state = str(tmp_path / "state.json")
    StateStore(state).save(Timers(homes={f"gone{i:02}": "p" * 255 for i in range(40)}), Controls())
    engine = Engine(parse({**CONFIG, "state_file": state}), FakeWlm(), FakeCloud(), StateStore(state))
    with pytest.raises(CloudError) as refused:
        engine.run_once()
    message = str(refused.value)
    assert "'gone04'" in message and "gone05" not in message and message.count("and 35 more") == 2
    assert len(message) < 3000


def test_a_new_instance_under_a_joined_name_is_one_that_has_not_joined_yet(world):
    # A cloud node powered down and up again quickly: the name joined
    # before, this instance (created later) has not, and is no contradiction.
    engine, _wlm, cloud = world
    cloud.instances["t-a-1"] = Instance("id-2", "t-a-1", "a", InstanceStatus.BUILDING, NOW + 5)
    engine.store.save(Timers(joined={"t-a-1": NOW - 100}), Controls())
    result = engine.run_once()
    assert not result.protected and engine.store.load()[0].joined == {}


# --- admitting workers (Capability.ADMITS) --------------------------------------


class AdmittingWlm(FakeWlm):
    """A WLM that accepts only hosts the head added (Grid Engine, Torque)."""

    capabilities = frozenset({Capability.ADMITS})
    refuse_admit = False

    def admit(self, resource, node, address):
        if self.refuse_admit:
            raise CommandError(["qconf", "-Ae"], 1, "", f"can't resolve hostname {node!r}")
        self.calls.append(("admit", resource.name, node, address))


@pytest.fixture
def admit_world(tmp_path):
    return make_world(tmp_path, AdmittingWlm())


def test_a_started_worker_the_wlm_does_not_list_is_admitted_once_it_has_an_address(admit_world):
    engine, wlm, cloud = admit_world
    cloud.instances["t-a-1"] = Instance("id1", "t-a-1", "a", InstanceStatus.BUILDING, NOW)  # no address yet
    cloud.instances["t-a-2"] = Instance("id2", "t-a-2", "a", InstanceStatus.ACTIVE, NOW, address="10.0.0.8")
    cloud.instances["t-b-1"] = Instance("id3", "t-b-1", "b", InstanceStatus.ACTIVE, NOW, address="10.0.0.9")
    wlm.node_list["t-b-1"] = WlmNode("t-b-1", "idle", cores=4)  # listed already
    result = engine.run_once()
    assert [c for c in wlm.calls if c[0] == "admit"] == [("admit", "a", "t-a-2", "10.0.0.8")]
    assert {"action": "admit", "node": "t-a-2", "reason": "started at 10.0.0.8"} in result.done


def test_admitting_goes_on_when_frozen_and_a_refusal_stops_nothing_else(admit_world):
    engine, wlm, cloud = admit_world
    cloud.instances["t-a-2"] = Instance("id2", "t-a-2", "a", InstanceStatus.ACTIVE, NOW, address="10.0.0.8")
    engine.store.save(Timers(), Controls(frozen=True))
    engine.run_once()
    assert ("admit", "a", "t-a-2", "10.0.0.8") in wlm.calls
    wlm.calls.clear()
    wlm.refuse_admit = True
    engine.store.save(Timers(), Controls())
    wlm.job_list = [Job("9", "pending", cores=4), Job("10", "pending", cores=4)]  # t-a-2 takes one
    result = engine.run_once()
    assert result.errors == [
        "admit t-a-2: CommandError: command 'qconf -Ae' failed with rc=1: can't resolve hostname 't-a-2'"
    ]
    assert cloud.created  # the launch for the waiting job still happened
    assert "t-a-2" in cloud.instances  # and the refused worker was not touched


def test_a_wlm_without_the_capability_is_never_asked_to_admit(world):
    engine, wlm, cloud = world
    cloud.instances["t-a-2"] = Instance("id2", "t-a-2", "a", InstanceStatus.ACTIVE, NOW, address="10.0.0.8")
    engine.run_once()  # FakeWlm.admit is the base's, which raises: it must not be called
    assert not [c for c in wlm.calls if c[0] == "admit"]
