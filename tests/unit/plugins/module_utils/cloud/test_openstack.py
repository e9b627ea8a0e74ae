"""The openstack cloud provider, against a real Nova (no mocks of the API).

The ``nova_cloud`` fixture (tests/fixtures/nova.py) runs Nova 34 from PyPI
with its functional-test harness: two projects with different quotas, two
availability zones (az-a: 2 hosts, az-b: 1 host of 10 vCPU x4 and 8 GB),
an image ``dcaas-worker`` and one shared network. Tests that need it are
skipped when .venv-nova is missing (run hack/nova/setup.sh). The first part
of the file tests the pure helpers and needs nothing.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError, LaunchSpec
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.openstack import (
    MISSING_LIBRARY,
    OpenStackProvider,
    _address,
    _created,
    _status,
    fault_kind,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    LABEL_CLUSTER,
    LABEL_RESOURCE,
    LABEL_ROLE,
    ROLE_WORKER,
    Headroom,
    Instance,
    InstanceStatus,
    Resource,
)

if TYPE_CHECKING:
    from ansible_collections.dcaas.cluster.tests.fixtures.nova import NovaCloud

# The fixture module is loaded as a plugin, never imported here: an import
# would bypass pytest's assertion rewriting for it.
pytest_plugins = ["ansible_collections.dcaas.cluster.tests.fixtures.nova"]

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5, "build", "collections"))


def res(name: str = "small", **kwargs: Any) -> Resource:
    values: dict[str, Any] = {"flavor": "c1.small", "image": "dcaas-worker", "cores": 1, "memory_mb": 1024}
    values.update(kwargs)
    return Resource(name=name, **values)


def spec(resource: Resource, name: str, user_data: str = "#cloud-config\n{}\n", **labels: str) -> LaunchSpec:
    return LaunchSpec(name=name, resource=resource, user_data=user_data, labels=labels)


# --- pure helpers: no Nova needed ------------------------------------------------


def test_module_imports_without_openstacksdk_and_says_what_is_missing():
    code = (
        "import sys\n"
        "sys.modules['openstack'] = None\n"  # makes `import openstack` fail
        "sys.modules['keystoneauth1'] = None\n"
        "from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.openstack import OpenStackProvider\n"
        "from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError\n"
        "try:\n"
        "    OpenStackProvider('c1', {'cloud': 'x'}).list_instances()\n"
        "except CloudError as exc:\n"
        "    print(exc.kind, exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": COLLECTIONS}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert proc.stdout.strip() == f"config {MISSING_LIBRARY}", proc.stderr


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("No valid host was found. ", "capacity"),
        ("Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures", "capacity"),
        ("Quota exceeded for cores: Requested 4, but already used 10 of 12 cores", "quota"),
        ("Image 3f0e... could not be found.", "config"),
        ("Build of instance x aborted: Failed to allocate the network(s), not rescheduling.", "config"),
        ("Connection to libvirt lost: 1", "transient"),
        (None, "transient"),
    ],
)
def test_fault_kind(fault, kind):
    assert fault_kind(fault) == kind


@pytest.mark.parametrize(
    ("status", "task_state", "expect"),
    [
        ("BUILD", None, InstanceStatus.BUILDING),
        ("ACTIVE", None, InstanceStatus.ACTIVE),
        ("ACTIVE", "deleting", InstanceStatus.DELETING),
        ("ERROR", None, InstanceStatus.ERROR),
        ("SHUTOFF", None, InstanceStatus.STOPPED),
        ("SHELVED_OFFLOADED", None, InstanceStatus.STOPPED),
        ("DELETED", None, InstanceStatus.DELETING),
        ("SOFT_DELETED", None, InstanceStatus.DELETING),
        ("UNKNOWN", None, InstanceStatus.ERROR),
        ("REBOOT", None, InstanceStatus.ACTIVE),
    ],
)
def test_status_mapping(status, task_state, expect):
    assert _status(SimpleNamespace(status=status, task_state=task_state)) is expect


def test_address_prefers_fixed_ipv4_on_the_resource_network():
    addresses = {
        "public": [{"addr": "203.0.113.5", "version": 4, "OS-EXT-IPS:type": "fixed"}],
        "hpc": [
            {"addr": "2001:db8::5", "version": 6, "OS-EXT-IPS:type": "fixed"},
            {"addr": "10.0.0.9", "version": 4, "OS-EXT-IPS:type": "fixed"},
            {"addr": "198.51.100.7", "version": 4, "OS-EXT-IPS:type": "floating"},
        ],
    }
    assert _address(addresses, "hpc") == "10.0.0.9"
    assert _address(addresses, None) in ("203.0.113.5", "10.0.0.9")
    assert _address({}, "hpc") is None
    assert _address(None, None) is None


def test_created_parses_nova_timestamps():
    assert _created("2026-01-02T03:04:05Z") == 1767323045.0
    assert abs(_created(None) - time.time()) < 5


def test_unknown_options_are_rejected_before_any_call():
    with pytest.raises(CloudError) as err:
        OpenStackProvider("c1", {"cloud": "x", "flavour": "m1"})
    assert err.value.kind == "config"
    assert "cloud.options.flavour: unknown field" in str(err.value)

    with pytest.raises(CloudError) as err:
        OpenStackProvider("c1", {}, resources=[res(options={"security_groups": "default"})])
    assert "resource 'small' options.security_groups: expected a list" in str(err.value)

    with pytest.raises(CloudError) as err:
        OpenStackProvider("c1", {"auth": "hunter2"})
    assert "expected a mapping" in str(err.value) and "hunter2" not in str(err.value)


def test_which_project_a_resource_uses():
    provider = OpenStackProvider("c1", {"cloud": "base"})
    assert provider._target(res()).cloud == "base"
    assert provider._target(res(tenant="tenant-a")).cloud == "tenant-a"
    assert provider._target(res(tenant="tenant-a", options={"cloud": "other"})).cloud == "other"
    assert provider._target(res(tenant="tenant-a", options={"cloud": "other"})).project == "tenant-a"

    with_auth = OpenStackProvider("c1", {"auth": {"auth_url": "https://k/v3", "username": "u", "password": "pw"}})
    target = with_auth._target(res(tenant="physics"))
    assert target.cloud is None
    assert dict(target.settings)["auth"]["project_name"] == "physics"


def test_metadata_that_nova_would_refuse_is_a_config_error():
    provider = OpenStackProvider("c1", {"cloud": "x"})
    with pytest.raises(CloudError) as err:
        provider.create(spec(res(), "w1", **{"bad/key": "v"}))
    assert err.value.kind == "config" and "'bad/key'" in str(err.value)


# --- against a real Nova ---------------------------------------------------------


@pytest.fixture
def make_os_provider(nova_cloud: NovaCloud, nova_cluster: str) -> Callable[..., OpenStackProvider]:
    made: list[OpenStackProvider] = []

    def make(resources: tuple[Resource, ...] = (), **options: Any) -> OpenStackProvider:
        opts = {"clouds_file": nova_cloud.clouds_file, "network": nova_cloud.network["id"], **options}
        provider = OpenStackProvider(nova_cluster, opts, resources=resources)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def wait_for(provider: OpenStackProvider, predicate: Callable[[list[Instance]], bool], timeout: float = 15) -> list:
    deadline = time.monotonic() + timeout
    while True:
        instances = provider.list_instances()
        if predicate(instances):
            return instances
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last seen: {instances}")
        time.sleep(0.1)


def by_name(instances: list[Instance]) -> dict[str, Instance]:
    return {i.name: i for i in instances}


def test_create_list_delete_with_metadata(nova_cloud, nova_admin, nova_cluster, make_os_provider):
    small = res(tenant="tenant-a", zone="az-a")
    provider = make_os_provider((small,))
    started = time.time()
    made = provider.create(spec(small, f"{nova_cluster}-small-1", user_data="#cloud-config\nhostname: w1\n"))
    assert made.status is InstanceStatus.BUILDING  # returned without waiting
    assert (made.resource, made.zone, made.tenant) == ("small", "az-a", "tenant-a")

    instances = wait_for(provider, lambda xs: [i.status for i in xs] == [InstanceStatus.ACTIVE])
    inst = instances[0]
    assert inst.id == made.id and inst.name == f"{nova_cluster}-small-1"
    assert (inst.resource, inst.role, inst.zone, inst.tenant) == ("small", ROLE_WORKER, "az-a", "tenant-a")
    assert inst.address and inst.address.startswith("192.168.1.")
    assert started - 5 <= inst.created <= time.time() + 5
    assert inst.fault is None

    server = nova_admin.compute.get_server(made.id)
    assert server.metadata == {LABEL_CLUSTER: nova_cluster, LABEL_ROLE: ROLE_WORKER, LABEL_RESOURCE: "small"}
    assert server.project_id == nova_cloud.projects["tenant-a"]
    assert server.compute_host in nova_cloud.zones["az-a"]
    assert base64.b64decode(server.user_data).decode() == "#cloud-config\nhostname: w1\n"

    provider.delete(inst)
    wait_for(provider, lambda xs: not xs)
    provider.delete(inst)  # gone: nothing to do, no error


def test_servers_without_our_label_are_invisible_and_undeletable(nova_cloud, nova_cluster, make_os_provider):
    small = res(tenant="tenant-a")
    provider = make_os_provider((small,))
    conn = nova_cloud.connect("tenant-a")
    base = {
        "flavor_id": conn.compute.find_flavor("c1.small", ignore_missing=False).id,
        "image_id": nova_cloud.image["id"],
        "networks": "auto",
    }
    bare = conn.compute.create_server(name="not-ours", metadata={nova_cloud.test_mark: nova_cluster}, **base)
    other = conn.compute.create_server(
        name="other-cluster", metadata={LABEL_CLUSTER: "someone-else", nova_cloud.test_mark: nova_cluster}, **base
    )
    mine = provider.create(spec(small, f"{nova_cluster}-small-1"))
    conn.compute.wait_for_server(bare, interval=0.1, wait=15)

    assert [i.id for i in provider.list_instances()] == [mine.id]
    for server in (bare, other):
        forged = Instance(id=server.id, name=server.name, resource="small", status=InstanceStatus.ACTIVE, created=0.0)
        with pytest.raises(CloudError) as err:
            provider.delete(forged)
        assert err.value.kind == "config"
        assert f"refusing to delete server {server.id}" in str(err.value)
        assert conn.compute.get_server(server.id).status != "DELETED"
    conn.close()


def test_quota_exhaustion_gives_quota_error_and_zero_headroom(nova_cluster, make_os_provider):
    medium = res("medium", flavor="c2.medium", cores=2, memory_mb=4096, tenant="tenant-b")
    provider = make_os_provider((medium,))
    assert provider.headroom(medium) == Headroom(instances=2, cores=4, memory_mb=8192)

    for n in (1, 2):
        provider.create(spec(medium, f"{nova_cluster}-medium-{n}"))
    # Nova counts usage from instance records, which a server gets once the
    # conductor has scheduled it: limits lag a moment behind a create (the
    # engine counts booting instances itself).
    wait_for(provider, lambda xs: len(xs) == 2 and all(i.status is InstanceStatus.ACTIVE for i in xs))
    headroom = provider.headroom(medium)
    assert headroom == Headroom(instances=0, cores=0, memory_mb=0)
    assert headroom.nodes_for(medium.cores, medium.memory_mb) == 0

    with pytest.raises(CloudError) as err:
        provider.create(spec(medium, f"{nova_cluster}-medium-3"))
    assert err.value.kind == "quota"
    assert "resource 'medium'" in str(err.value) and "project 'tenant-b'" in str(err.value)
    assert "Quota exceeded" in str(err.value)


def test_burst_past_quota_sends_the_extra_servers_to_error_with_a_quota_fault(nova_cluster, make_os_provider):
    # Nova checks quota against scheduled instances only, so creates in quick
    # succession all pass the API; the conductor's recheck then fails the
    # extra ones. The engine sees them as error instances with a quota fault.
    medium = res("medium", flavor="c2.medium", cores=2, memory_mb=4096, tenant="tenant-b")
    provider = make_os_provider((medium,))
    made = []
    for n in (1, 2, 3):
        try:
            made.append(provider.create(spec(medium, f"{nova_cluster}-medium-{n}")))
        except CloudError as exc:  # the API saw the first two scheduled already
            assert exc.kind == "quota"
    instances = wait_for(provider, lambda xs: all(i.status is not InstanceStatus.BUILDING for i in xs))
    statuses = sorted(i.status.value for i in instances)
    failed = [i for i in instances if i.status is InstanceStatus.ERROR]
    if len(made) == 3:
        assert statuses == ["active", "active", "error"]
        assert fault_kind(failed[0].fault) == "quota", failed[0].fault
    else:
        assert statuses == ["active", "active"]


def test_full_zone_sends_the_extra_server_to_error_with_a_capacity_fault(nova_cluster, make_os_provider):
    # az-b has one host with 8 GB: one c4.large fills it.
    large = res("large", flavor="c4.large", cores=4, memory_mb=8192, tenant="tenant-a", zone="az-b")
    provider = make_os_provider((large,))
    first = provider.create(spec(large, f"{nova_cluster}-large-1"))
    wait_for(provider, lambda xs: by_name(xs)[first.name].status is InstanceStatus.ACTIVE)
    second = provider.create(spec(large, f"{nova_cluster}-large-2"))
    instances = wait_for(provider, lambda xs: by_name(xs)[second.name].status is not InstanceStatus.BUILDING)
    failed = by_name(instances)[second.name]
    assert failed.status is InstanceStatus.ERROR
    assert "No valid host" in (failed.fault or "")
    assert fault_kind(failed.fault) == "capacity"


def test_zone_with_every_host_disabled_is_capacity_and_unknown_zone_is_config(
    nova_admin, nova_cluster, make_os_provider
):
    in_b = res(tenant="tenant-a", zone="az-b")
    nowhere = res("nowhere", tenant="tenant-a", zone="az-x")
    provider = make_os_provider((in_b, nowhere))
    service = next(nova_admin.compute.services(binary="nova-compute", host="compute-b1"))
    nova_admin.compute.disable_service(service)
    try:
        with pytest.raises(CloudError) as err:
            provider.create(spec(in_b, f"{nova_cluster}-small-1"))
        assert err.value.kind == "capacity"
        assert "availability zone 'az-b' in project 'tenant-a' has no host available" in str(err.value)
    finally:
        nova_admin.compute.enable_service(service)

    with pytest.raises(CloudError) as err:
        provider.create(spec(nowhere, f"{nova_cluster}-nowhere-1"))
    assert err.value.kind == "config"
    assert "availability zone 'az-x' not found in project 'tenant-a' (known: az-a, az-b" in str(err.value)


def test_a_new_provider_adopts_servers_in_every_project(nova_cluster, make_os_provider):
    in_a = res("pool-a", tenant="tenant-a", zone="az-a")
    in_b = res("pool-b", tenant="tenant-b")
    before = make_os_provider((in_a, in_b))
    made = [
        before.create(spec(in_a, f"{nova_cluster}-pool-a-1")),
        before.create(spec(in_b, f"{nova_cluster}-pool-b-1")),
    ]
    wait_for(before, lambda xs: len(xs) == 2 and all(i.status is InstanceStatus.ACTIVE for i in xs))

    # "Restart": new objects, nothing shared but the cloud.
    after = make_os_provider((in_a, in_b))
    seen = {i.name: (i.id, i.resource, i.tenant) for i in after.list_instances()}
    assert seen == {
        made[0].name: (made[0].id, "pool-a", "tenant-a"),
        made[1].name: (made[1].id, "pool-b", "tenant-b"),
    }
    # Without the resources, the projects to look in come from ``tenants``.
    by_tenants = make_os_provider(tenants=["tenant-a", "tenant-b"])
    assert {i.id for i in by_tenants.list_instances()} == {m.id for m in made}

    # The engine deletes with what the WLM knows: name, id, resource; no tenant.
    for m in made:
        after.delete(Instance(id=m.id, name=m.name, resource=m.resource, status=InstanceStatus.DELETING, created=0))
    wait_for(after, lambda xs: not xs)


def test_unknown_flavor_image_network_are_config_errors_naming_them(nova_cluster, make_os_provider):
    provider = make_os_provider()
    cases = [
        (res("short-sa", flavor="m3.huge", tenant="tenant-a"), "flavor 'm3.huge' not found in project 'tenant-a'"),
        (
            res("short-sa", image="no-such-image", tenant="tenant-b"),
            "image 'no-such-image' not found in project 'tenant-b'",
        ),
        (
            res("short-sa", tenant="tenant-a", options={"server_group": "no-such-group"}),
            "server group 'no-such-group' not found in project 'tenant-a'",
        ),
        (
            res("short-sa", tenant="tenant-a", options={"network": "11111111-2222-3333-4444-555555555555"}),
            "Network 11111111-2222-3333-4444-555555555555 could not be found",
        ),
        (res("short-sa", tenant="tenant-a", options={"key_name": "nokey"}), "Invalid key_name provided"),
        (
            res("short-sa", tenant="tenant-a", options={"security_groups": ["nosuchgroup"]}),
            "nosuchgroup",
        ),
    ]
    for resource, message in cases:
        with pytest.raises(CloudError) as err:
            provider.create(spec(resource, f"{nova_cluster}-short-sa-1"))
        assert err.value.kind == "config", err.value
        assert str(err.value).startswith("resource 'short-sa': "), err.value
        assert message in str(err.value)
    assert provider.list_instances() == []


def test_key_security_group_and_server_group_reach_nova(nova_cloud, nova_admin, nova_cluster, make_os_provider):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    conn = nova_cloud.connect("tenant-a")
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    key = conn.compute.create_keypair(name=f"{nova_cluster}-key", public_key=public)
    group = conn.compute.create_server_group(name=f"{nova_cluster}-spread", policy="anti-affinity")
    try:
        pinned = res(
            tenant="tenant-a",
            options={"key_name": key.name, "security_groups": ["default"], "server_group": group.name},
        )
        provider = make_os_provider((pinned,))
        made = provider.create(spec(pinned, f"{nova_cluster}-small-1"))
        wait_for(provider, lambda xs: [i.status for i in xs] == [InstanceStatus.ACTIVE])
        server = nova_admin.compute.get_server(made.id)
        assert server.key_name == key.name
        assert [g["name"] for g in server.security_groups] == ["default"]
        assert conn.compute.get_server_group(group.id).member_ids == [made.id]
    finally:
        # Nova lets both go while servers use them; nova_cluster deletes those.
        conn.compute.delete_server_group(group, ignore_missing=True)
        conn.compute.delete_keypair(key, ignore_missing=True)
        conn.close()


def test_auth_options_instead_of_clouds_yaml(nova_cloud, nova_cluster, make_os_provider):
    with open(nova_cloud.clouds_file) as fh:
        token = json.load(fh)["clouds"]["tenant-b"]["auth"]["token"]
    auth = {"endpoint": nova_cloud.endpoint, "token": token}
    provider = make_os_provider(auth_type="admin_token", auth=auth)
    small = res()
    made = provider.create(spec(small, f"{nova_cluster}-small-1"))
    assert made.tenant is None
    assert [i.id for i in wait_for(provider, lambda xs: xs[0].status is InstanceStatus.ACTIVE)] == [made.id]
    assert provider.headroom(small).instances == 1  # tenant-b allows 2


def test_errors_never_carry_credentials(nova_cloud, nova_cluster, make_os_provider):
    bogus = "s3cr3t-" + nova_cluster
    wrong = make_os_provider(auth_type="admin_token", auth={"endpoint": nova_cloud.endpoint, "token": bogus})
    with pytest.raises(CloudError) as err:
        wrong.list_instances()
    assert err.value.kind == "config" and "authentication failed" in str(err.value)
    assert bogus not in str(err.value)

    down = make_os_provider(auth_type="admin_token", auth={"endpoint": "http://127.0.0.1:9/v2.1", "token": bogus})
    started = time.monotonic()
    with pytest.raises(CloudError) as err:
        down.headroom(res())
    assert err.value.kind == "transient"
    assert bogus not in str(err.value)
    assert time.monotonic() - started < 5

    missing = make_os_provider()
    with pytest.raises(CloudError) as err:
        missing.headroom(res(tenant="tenant-z"))
    assert err.value.kind == "config" and "tenant-z" in str(err.value)
    for token in nova_cloud.tokens:
        assert token not in str(err.value)
