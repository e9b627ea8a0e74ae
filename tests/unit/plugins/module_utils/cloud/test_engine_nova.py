"""The engine and the inventory plugin against a real Nova.

Everything here is the real thing except the workload manager: the real
``Engine`` with the real policy, the real ``openstack`` provider, a real state
file on disk, and the real Nova 34 of the ``nova_cloud`` fixture
(tests/fixtures/nova.py; skipped without .venv-nova: run hack/nova/setup.sh).

The workload manager is a FAKE (``QueueWlm``), because no real one can run
here: Nova's fake virt driver boots no guest, so no slurmd could ever start on
these servers and register with a slurmctld. The fake plays only what Slurm
would do: it holds a job queue, reports a node as registered (idle) once its
server is ACTIVE in Nova, runs one job per node when told to schedule, and
refuses to forget a node that runs a job. The real Slurm adapter is tested
against real Slurm in tests/integration.

Projects: ``tenant-a`` (quota 3 instances / 12 cores) is the research group's
own project; ``tenant-b`` (2 / 4) plays the shared overflow pool's project. A
third project would only repeat what two show: the shared pool is a resource
without ``accounts`` that lives in another project with its own quota.

Time: the engine's clock is injected (idle timeouts of a minute pass in no
time), while Nova runs on its own real clock; tests wait for Nova with a
deadline and then assert on what it reports, never on how long it took.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ansible_collections.dcaas.cluster.plugins.inventory import dynamic_cluster
from ansible_collections.dcaas.cluster.plugins.module_utils import frontend
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud import openstack
from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config, parse
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import Engine, Result, make_provider
from ansible_collections.dcaas.cluster.plugins.module_utils.model import LABEL_CLUSTER
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore
from ansible_collections.dcaas.cluster.tests.fixtures.queue_wlm import QueueWlm

if TYPE_CHECKING:
    from ansible_collections.dcaas.cluster.tests.fixtures.nova import NovaCloud

pytest_plugins = ["ansible_collections.dcaas.cluster.tests.fixtures.nova"]

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5, "build", "collections"))
IDLE_TIMEOUT = 60
WAIT = 30.0  # seconds Nova gets to finish what a test waits for (a deadline, not a timing)


# --- helpers -------------------------------------------------------------------


class Clock:
    """The engine's clock: starts at the real time (Nova's timestamps are real), moves when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def resource(name: str, tenant: str, **kwargs: Any) -> dict:
    values = {"name": name, "tenant": tenant, "flavor": "c1.small", "image": "dcaas-worker", "cores": 1}
    values.update({"memory_mb": 1024, **kwargs})
    return values


def servers(admin: Any, cluster: str) -> list[Any]:
    """Every server of the cluster, in every project."""
    found = admin.compute.servers(details=True, all_projects=True)
    return sorted((s for s in found if (s.metadata or {}).get(LABEL_CLUSTER) == cluster), key=lambda s: s.name)


def wait_servers(admin: Any, cluster: str, predicate: Callable[[list[Any]], bool]) -> list[Any]:
    deadline = time.monotonic() + WAIT
    while True:
        found = servers(admin, cluster)
        if predicate(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Nova did not get there in {WAIT} s; last seen: {[(s.name, s.status) for s in found]}"
            )
        time.sleep(0.1)


def settled(found: list[Any]) -> bool:
    return all(s.status in ("ACTIVE", "ERROR") and not s.task_state for s in found)


def foreign_server(nova_cloud: NovaCloud, cluster: str, project: str, name: str, **kwargs: Any) -> Any:
    """A server that is not the cluster's: only the test's cleanup mark, plus ``metadata``."""
    conn = nova_cloud.connect(project)
    try:
        flavor = conn.compute.find_flavor(kwargs.pop("flavor", "c1.small"), ignore_missing=False)
        metadata = {nova_cloud.test_mark: cluster, **kwargs.pop("metadata", {})}
        server = conn.compute.create_server(
            name=name,
            flavor_id=flavor.id,
            image_id=nova_cloud.image["id"],
            networks=[{"uuid": nova_cloud.network["id"]}],
            metadata=metadata,
            **kwargs,
        )
        return conn.compute.wait_for_server(server, interval=0.1, wait=WAIT)
    finally:
        conn.close()


def converge(engine: Engine, passes: int = 3) -> Result:
    """Run passes until one changes nothing; fail if that does not happen."""
    for _pass in range(passes):
        result = engine.run_once()
        if not result.plan.changes:
            return result
    raise AssertionError(f"still changing after {passes} passes: {result.plan.to_dict()}")


def launches(result: Result) -> dict[str, int]:
    return {launch.resource: launch.count for launch in result.plan.launches}


def actions(result: Result, action: str) -> list[str]:
    return sorted(a["node"] for a in result.done if a["action"] == action)


def states(result: Result) -> dict[str, str]:
    return {n.name: n.state.value for n in result.observed.nodes}


@pytest.fixture
def world(nova_cloud: NovaCloud, nova_admin: Any, nova_cluster: str, tmp_path: Any) -> Iterator[Any]:
    """Builds engine configurations and engines for this test's cluster; one fake WLM and clock."""
    made: list[Engine] = []

    class World:
        cluster = nova_cluster
        admin = nova_admin
        wlm = QueueWlm(nova_admin, nova_cluster)
        clock = Clock()
        state_file = str(tmp_path / "state" / "state.json")

        @staticmethod
        def config(*resources: dict) -> dict:
            return {
                "cluster": nova_cluster,
                "cloud": {
                    "provider": "openstack",
                    "options": {"clouds_file": nova_cloud.clouds_file, "network": nova_cloud.network["id"]},
                },
                "resources": list(resources),
                "timers": {"idle_timeout": IDLE_TIMEOUT, "boot_timeout": 300, "down_timeout": 60},
                "state_file": World.state_file,
            }

        @staticmethod
        def engine(*resources: dict) -> Engine:
            """A new engine, as after a restart: new provider and connections, same state file."""
            cfg: Config = parse(World.config(*resources))
            engine = Engine(cfg, World.wlm, make_provider(cfg), StateStore(cfg.state_file), clock=World.clock)
            made.append(engine)
            return engine

    yield World
    for engine in made:
        engine.cloud.close()


# --- the engine --------------------------------------------------------------------


def test_scales_up_for_the_queue_and_back_down_to_min_after_idle_timeout(world):
    engine = world.engine(resource("small", "tenant-a", zone="az-a", min=1, max=3))
    for n in range(3):
        world.wlm.submit(f"j{n}")

    first = engine.run_once()
    assert first.errors == [] and launches(first) == {"small": 3}
    assert len(first.launched) == 3
    # The booting servers cover the queue: nothing is launched twice.
    again = engine.run_once()
    assert again.launched == [] and again.errors == []
    booted = wait_servers(world.admin, world.cluster, lambda xs: len(xs) == 3 and settled(xs))
    assert {s.name for s in booted} == set(first.launched)
    assert {(s.status, s.availability_zone) for s in booted} == {("ACTIVE", "az-a")}

    world.wlm.schedule()
    busy = engine.run_once()
    assert set(states(busy).values()) == {"busy"} and not busy.plan.changes

    world.wlm.finish_all()
    idle = engine.run_once()  # idle clocks start now
    assert set(states(idle).values()) == {"idle"} and not idle.plan.changes
    world.clock.advance(IDLE_TIMEOUT + 1)
    drain = engine.run_once()
    assert len(actions(drain, "drain")) == 2  # the third stays: min=1
    delete = engine.run_once()
    assert actions(delete, "delete") == actions(drain, "drain")
    # The node min keeps is left alone in the pass that deletes the others.
    assert actions(delete, "drain") == []

    left = wait_servers(world.admin, world.cluster, lambda xs: len(xs) == 1)
    assert left[0].status == "ACTIVE" and left[0].name not in actions(drain, "drain")
    steady = converge(engine)
    assert states(steady) == {left[0].name: "idle"} and steady.errors == []
    with open(world.state_file, encoding="utf-8") as fh:
        assert set(json.load(fh)["timers"]["idle_since"]) == {left[0].name}


def test_full_tenant_quota_overflows_to_the_shared_pool_in_the_same_pass(world, nova_cloud):
    # tenant-a allows 3 instances; two servers of someone else leave room for one.
    for n in (1, 2):
        foreign_server(nova_cloud, world.cluster, "tenant-a", f"{world.cluster}-other-{n}")
    own = resource("physics", "tenant-a", accounts=["physics"], priority=1)
    shared = resource("shared", "tenant-b", priority=1)
    engine = world.engine(own, shared)
    for n in range(3):
        world.wlm.submit(f"p{n}", account="physics")

    result = engine.run_once()
    assert result.errors == []
    assert launches(result) == {"physics": 1, "shared": 2}
    found = wait_servers(world.admin, world.cluster, lambda xs: len(xs) == 3 and settled(xs))
    projects = sorted((s.metadata["dcaas.resource"], s.project_id) for s in found)
    assert projects == sorted(
        [
            ("physics", nova_cloud.projects["tenant-a"]),
            ("shared", nova_cloud.projects["tenant-b"]),
            ("shared", nova_cloud.projects["tenant-b"]),
        ]
    )
    assert {s.status for s in found} == {"ACTIVE"}  # none failed the quota recheck

    # Both projects are full now: more demand launches nothing, and tries nothing.
    world.wlm.submit("p3", account="physics")
    full = engine.run_once()
    assert full.launched == [] and full.errors == [] and launches(full) == {}
    assert {name: hr.instances for name, hr in full.observed.headroom.items()} == {"physics": 0, "shared": 0}
    assert len(servers(world.admin, world.cluster)) == 3


def test_zone_without_available_hosts_sends_launches_to_the_other_zone(world, nova_cloud, nova_admin):
    engine = world.engine(
        resource("zone-a", "tenant-a", zone="az-a", priority=1),
        resource("zone-b", "tenant-a", zone="az-b", priority=2),
    )
    world.wlm.submit("j1")
    world.wlm.submit("j2")
    disabled = [s for s in nova_admin.compute.services(binary="nova-compute") if s.host in nova_cloud.zones["az-a"]]
    assert len(disabled) == 2
    try:
        for service in disabled:
            nova_admin.compute.disable_service(service)
        result = engine.run_once()
    finally:
        for service in disabled:
            nova_admin.compute.enable_service(service)

    assert len(result.errors) == 1 and "availability zone 'az-a'" in result.errors[0], result.errors
    assert launches(result) == {"zone-a": 2}  # the plan; the replan of the same pass moved them
    found = wait_servers(world.admin, world.cluster, lambda xs: len(xs) == 2 and settled(xs))
    assert {(s.metadata["dcaas.resource"], s.availability_zone, s.status) for s in found} == {
        ("zone-b", "az-b", "ACTIVE")
    }
    assert {s.compute_host for s in found} == set(nova_cloud.zones["az-b"])
    with open(world.state_file, encoding="utf-8") as fh:
        assert list(json.load(fh)["timers"]["backoff"]) == ["zone-a"]
    # The queue is covered: nothing more, even with az-a back.
    assert engine.run_once().launched == []


def test_server_that_goes_to_error_is_deleted_and_replaced_elsewhere(world, nova_cloud):
    # One c4.large fills az-b's only host; ours cannot be placed there.
    blocker = foreign_server(
        nova_cloud, world.cluster, "tenant-b", f"{world.cluster}-blocker", flavor="c4.large", availability_zone="az-b"
    )
    assert blocker.status == "ACTIVE"
    large = {"flavor": "c4.large", "cores": 4, "memory_mb": 8192}
    engine = world.engine(
        resource("big-b", "tenant-a", zone="az-b", priority=1, **large),
        resource("big-a", "tenant-a", zone="az-a", priority=2, **large),
    )
    world.wlm.submit("wide", cores=4, memory_mb=8000)

    first = engine.run_once()
    assert first.errors == [] and launches(first) == {"big-b": 1}
    failed = wait_servers(world.admin, world.cluster, lambda xs: len(xs) == 1 and settled(xs))
    assert [(s.name, s.status) for s in failed] == [(first.launched[0], "ERROR")]
    assert "No valid host" in (failed[0].fault or {}).get("message", "")

    second = engine.run_once()
    assert actions(second, "delete") == first.launched
    assert launches(second) == {"big-a": 1} and len(second.launched) == 1
    found = wait_servers(world.admin, world.cluster, lambda xs: len(xs) == 1 and settled(xs))
    assert [(s.name, s.status, s.availability_zone) for s in found] == [(second.launched[0], "ACTIVE", "az-a")]
    with open(world.state_file, encoding="utf-8") as fh:
        backoff = json.load(fh)["timers"]["backoff"]
    assert list(backoff) == ["big-b"] and "No valid host" in backoff["big-b"]["last_error"]
    world.wlm.schedule()
    assert engine.run_once().launched == []
    assert world.admin.compute.get_server(blocker.id).status == "ACTIVE"


def test_restarted_engine_adopts_servers_launches_nothing_and_leaves_no_orphans(world, nova_cloud):
    unlabelled = foreign_server(nova_cloud, world.cluster, "tenant-a", f"{world.cluster}-unlabelled")
    other = foreign_server(
        nova_cloud, world.cluster, "tenant-b", f"{world.cluster}-other", metadata={LABEL_CLUSTER: "someone-else"}
    )
    pools = (resource("physics", "tenant-a", zone="az-a", accounts=["physics"]), resource("shared", "tenant-b"))
    world.wlm.submit("p1", account="physics")
    world.wlm.submit("c1", account="chemistry")
    before = world.engine(*pools).run_once()
    assert launches(before) == {"physics": 1, "shared": 1}
    wait_servers(world.admin, world.cluster, lambda xs: len(xs) == 2 and settled(xs))
    world.wlm.schedule()

    # A restart with the state file, then one that lost it.
    for lose_state in (False, True):
        if lose_state:
            os.remove(world.state_file)
        restarted = world.engine(*pools).run_once()
        assert restarted.errors == [] and restarted.launched == [] and restarted.done == []
        assert states(restarted) == {name: "busy" for name in before.launched}
        assert {(n.resource, n.tenant) for n in restarted.observed.nodes} == {
            ("physics", "tenant-a"),
            ("shared", "tenant-b"),
        }

    world.wlm.finish_all()
    engine = world.engine(*pools)
    engine.run_once()
    world.clock.advance(IDLE_TIMEOUT + 1)
    assert actions(engine.run_once(), "drain") == sorted(before.launched)
    assert actions(engine.run_once(), "delete") == sorted(before.launched)
    wait_servers(world.admin, world.cluster, lambda xs: not xs)
    assert not engine.run_once().plan.changes

    for server in (unlabelled, other):
        assert world.admin.compute.get_server(server.id).status == "ACTIVE"


# --- the inventory plugin ----------------------------------------------------------


def run_inventory(path: str, cache: bool) -> Any:
    """One inventory load, as ``ansible-inventory -i path --list`` does it (``cache=False``: --flush-cache)."""
    from ansible import constants as C
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import fragment_loader
    from ansible.utils.plugin_docs import get_docstring

    # What the plugin loader does: register the documented options under the plugin's name.
    doc = get_docstring(dynamic_cluster.__file__, fragment_loader)[0]
    C.config.initialize_plugin_configuration_definitions(
        "inventory", dynamic_cluster.InventoryModule.NAME, doc["options"]
    )
    plugin = dynamic_cluster.InventoryModule()
    plugin._load_name = plugin.ansible_name = plugin.NAME
    assert plugin.verify_file(path)
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), path, cache=cache)
    plugin.update_cache_if_changed()  # what the InventoryManager does after parse
    return inventory


@pytest.fixture
def collection_loader() -> Iterator[None]:
    """Ansible's collection loader, as the ansible CLIs install it (it resolves ansible.builtin.* plugins).

    It refuses to load this collection's modules from the plain package
    pytest imports them from, so everything the plugin runs is imported
    before it is installed (the lazily imported provider: see the imports).
    """
    assert openstack.OpenStackProvider
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    _AnsibleCollectionFinder(paths=[COLLECTIONS])._install()
    try:
        yield
    finally:
        _AnsibleCollectionFinder._remove()


def members(inventory: Any, group: str) -> list[str]:
    return sorted(h.name for h in inventory.groups[group].get_hosts()) if group in inventory.groups else []


def test_inventory_groups_nova_servers_by_zone_tenant_and_state_and_caches(
    world, nova_cloud, tmp_path, monkeypatch, collection_loader
):
    pools = (
        resource("physics", "tenant-a", zone="az-a", accounts=["physics"]),
        resource("shared", "tenant-b", zone="az-b"),
    )
    world.wlm.submit("p1", account="physics")
    world.wlm.submit("c1", account="chemistry")
    launched = world.engine(*pools).run_once()
    found = wait_servers(world.admin, world.cluster, lambda xs: len(xs) == 2 and settled(xs))
    by_resource = {s.metadata["dcaas.resource"]: s for s in found}
    physics, shared = by_resource["physics"], by_resource["shared"]
    assert {physics.name, shared.name} == set(launched.launched)
    world.wlm.drain(shared.name, "admin: disk check")

    # Built from the inventory file like the scale module builds it, but with the fake WLM.
    monkeypatch.setattr(frontend, "make_wlm", lambda cfg: world.wlm)
    config = world.config(*pools)
    config["state_file"] = str(tmp_path / "inventory-state.json")
    path = tmp_path / "dynamic_cluster.yml"
    cache_dir = tmp_path / "cache"
    source = {
        "plugin": "dcaas.cluster.dynamic_cluster",
        "config": config,
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(cache_dir),
        "cache_timeout": 3600,
    }
    path.write_text(json.dumps(source))  # JSON is YAML

    inv = run_inventory(str(path), cache=True)
    assert members(inv, f"dcaas_{world.cluster.replace('-', '_')}") == sorted([physics.name, shared.name])
    assert members(inv, "dcaas_zone_az_a") == [physics.name]
    assert members(inv, "dcaas_zone_az_b") == [shared.name]
    assert members(inv, "dcaas_tenant_tenant_a") == [physics.name]
    assert members(inv, "dcaas_tenant_tenant_b") == [shared.name]
    assert members(inv, "dcaas_state_idle") == [physics.name]
    assert members(inv, "dcaas_state_draining") == [shared.name]
    assert members(inv, "dcaas_resource_shared") == [shared.name]
    hostvars = inv.hosts[physics.name].vars
    assert hostvars["dcaas_instance_id"] == physics.id
    assert hostvars["ansible_host"] == next(a["addr"] for nets in physics.addresses.values() for a in nets)
    assert inv.hosts[shared.name].vars["dcaas_reason"] == "admin: disk check"
    assert os.listdir(cache_dir), "nothing was written to the inventory cache"

    # Change the truth: the shared server goes. A cached load still shows it
    # and asks neither the WLM nor Nova; a refresh shows what is there.
    world.admin.compute.delete_server(shared.id)
    wait_servers(world.admin, world.cluster, lambda xs: [s.name for s in xs] == [physics.name])
    reads = world.wlm.reads
    cached = run_inventory(str(path), cache=True)
    assert world.wlm.reads == reads
    assert members(cached, "dcaas_zone_az_b") == [shared.name]
    assert members(cached, "dcaas_state_draining") == [shared.name]

    fresh = run_inventory(str(path), cache=False)
    assert world.wlm.reads > reads
    assert sorted(fresh.hosts) == [physics.name]
    assert members(fresh, "dcaas_zone_az_b") == [] and members(fresh, "dcaas_tenant_tenant_b") == []
    # The refresh rewrote the cache.
    assert sorted(run_inventory(str(path), cache=True).hosts) == [physics.name]
