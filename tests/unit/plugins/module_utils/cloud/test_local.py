"""The local cloud provider against a real podman (no mocks).

Tests marked ``integration`` need the podman API socket and build the tiny
test image with hack/build-test-image.sh on first use. Its fake /sbin/init
exits 3 when it finds no NoCloud seed and otherwise records what it read in
/run/dcaas-seed.log, which is how the tests see the seed as it was when the
container started.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from typing import Any

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError, LaunchSpec
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.local import (
    LABEL_CORES,
    LABEL_MEMORY,
    LABEL_TENANT,
    LABEL_ZONE,
    MISSING_LIBRARY,
    LocalProvider,
    _created,
    _seed_archive,
    _status,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    LABEL_CLUSTER,
    LABEL_RESOURCE,
    LABEL_ROLE,
    Headroom,
    Instance,
    InstanceStatus,
)

USER_DATA = '#cloud-config\n{\n  "write_files": [{"path": "/etc/munge/munge.key", "content": "c2VjcmV0"}]\n}\n'
SEED = "/var/lib/cloud/seed/nocloud"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5))


def spec(name: str, res: Any, user_data: str = USER_DATA, **labels: str) -> LaunchSpec:
    return LaunchSpec(name=name, resource=res, user_data=user_data, labels=labels)


def read_file(container: Any, path: str) -> tuple[bytes, int]:
    """A file's content and mode through the archive API (works on stopped containers too)."""
    chunks, _stat = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        member = tar.getmembers()[0]
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read(), member.mode & 0o7777


def run_in(container: Any, *argv: str) -> str:
    code, (out, err) = container.exec_run(list(argv), demux=True)
    assert code == 0, f"{argv} failed ({code}): {err!r}"
    return (out or b"").decode()


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# --- pure -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "code", "expect"),
    [
        ("created", 0, InstanceStatus.BUILDING),
        ("configured", 0, InstanceStatus.BUILDING),
        ("initialized", 0, InstanceStatus.BUILDING),
        ("running", 0, InstanceStatus.ACTIVE),
        ("exited", 0, InstanceStatus.STOPPED),
        ("stopped", 0, InstanceStatus.STOPPED),
        ("exited", 3, InstanceStatus.ERROR),
        ("exited", 1, InstanceStatus.ERROR),  # e.g. init that cannot start
        # `podman stop`: SIGTERM, then SIGKILL after the timeout
        ("stopped", 137, InstanceStatus.STOPPED),
        ("exited", 143, InstanceStatus.STOPPED),
        ("dead", 0, InstanceStatus.ERROR),
        ("paused", 0, InstanceStatus.STOPPED),
        ("removing", 0, InstanceStatus.DELETING),
        ("something-new", 0, InstanceStatus.ERROR),
    ],
)
def test_status_mapping(state: str, code: int, expect: InstanceStatus) -> None:
    assert _status(state, code) is expect


def test_created_accepts_rfc3339_with_nanoseconds_and_epoch() -> None:
    assert _created("1970-01-01T00:00:10.123456789Z") == pytest.approx(10.123456)
    assert _created("2026-01-01T00:00:00+00:00") == 1767225600.0
    assert _created(1767225600) == 1767225600.0


def test_seed_archive_holds_meta_data_and_private_user_data() -> None:
    with tarfile.open(fileobj=io.BytesIO(_seed_archive("abc123", "node-1", USER_DATA))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"var/lib/cloud/seed/nocloud/meta-data", "var/lib/cloud/seed/nocloud/user-data"}
        user = members["var/lib/cloud/seed/nocloud/user-data"]
        assert user.mode == 0o600 and user.uid == 0
        handle = tar.extractfile(members["var/lib/cloud/seed/nocloud/meta-data"])
        assert handle is not None
        assert handle.read().decode() == "instance-id: abc123\nlocal-hostname: node-1\n"


def test_module_imports_without_podman_py() -> None:
    # The engine is stdlib-only at import time; podman-py loads on first call.
    code = (
        "import sys; import ansible_collections.dcaas.cluster.plugins.module_utils.cloud.local; "
        "assert 'podman' not in sys.modules and 'requests' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)


def test_missing_podman_py_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "podman", None)  # makes `import podman` fail
    with pytest.raises(CloudError) as err:
        LocalProvider("b-nolib").list_instances()
    assert err.value.kind == "config" and str(err.value) == MISSING_LIBRARY


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"sockt": "unix:///x"}, "cloud.options.sockt: unknown field"),
        ({"quota": {"t1": {"instances": -1}}}, "cloud.options.quota.t1.instances"),
        ({"quota": {"t1": {"gpus": 1}}}, "cloud.options.quota.t1.gpus: unknown field"),
        ({"volumes": {"home": "relative/path"}}, "cloud.options.volumes.home: 'relative/path' is not an absolute path"),
        ({"extra_labels": {"dcaas.cluster": "other"}}, "are the engine's own"),
        ({"enforce_limits": "yes"}, "enforce_limits: expected true or false"),
        ({"timeout": 0}, "cloud.options.timeout"),
        ({"command": []}, "cloud.options.command: must not be empty"),
    ],
)
def test_bad_options_are_rejected_up_front(options: dict, words: str) -> None:
    with pytest.raises(CloudError) as err:
        LocalProvider("b-opts", options)
    assert err.value.kind == "config" and words in str(err.value)


def test_bad_resource_options_are_rejected_before_any_call(resource: Any) -> None:
    # The socket does not exist: a 'config' error proves nothing was called.
    provider = LocalProvider("b-opts", {"socket": "unix:///nonexistent/dcaas-b.sock"})
    res = resource(options={"quota": {}})
    with pytest.raises(CloudError) as err:
        provider.create(spec("dcaas-b-opts-1", res))
    assert err.value.kind == "config" and "resource 'small' options.quota: unknown field" in str(err.value)


def test_bad_socket_is_transient(resource: Any) -> None:
    provider = LocalProvider("b-nosock", {"socket": "unix:///nonexistent/dcaas-b.sock"})
    for call in (provider.list_instances, lambda: provider.create(spec("dcaas-b-nosock-1", resource()))):
        with pytest.raises(CloudError) as err:
            call()
        assert err.value.kind == "transient"
        assert "unix:///nonexistent/dcaas-b.sock did not answer" in str(err.value)


# --- against podman ---------------------------------------------------------


@pytest.mark.integration
def test_create_list_delete_with_labels(make_provider, resource, node_name, podman_client, cluster) -> None:
    provider = make_provider(extra_labels={"site": "test"})
    small = resource("small", zone="az1", tenant="physics", cores=2, memory_mb=1024)
    big = resource("big", cores=4, memory_mb=4096)
    before = time.time()
    one = provider.create(spec(node_name("s1"), small, **{LABEL_ROLE: "worker", "purpose": "demo"}))
    two = provider.create(spec(node_name("b1"), big))

    assert one.name == node_name("s1") and one.resource == "small" and one.role == "worker"
    assert one.status is InstanceStatus.ACTIVE and one.address and one.address.count(".") == 3
    assert (one.zone, one.tenant) == ("az1", "physics")
    assert (two.zone, two.tenant) == (None, None)
    assert before - 2 <= one.created <= time.time() + 2

    listed = {i.id: i for i in provider.list_instances()}
    assert set(listed) == {one.id, two.id}
    assert listed[one.id] == one

    labels = podman_client.containers.get(one.id).labels
    assert labels[LABEL_CLUSTER] == cluster
    assert labels[LABEL_RESOURCE] == "small" and labels[LABEL_ROLE] == "worker"
    assert (labels[LABEL_ZONE], labels[LABEL_TENANT]) == ("az1", "physics")
    assert (labels[LABEL_CORES], labels[LABEL_MEMORY]) == ("2", "1024")
    assert (labels["site"], labels["purpose"]) == ("test", "demo")
    assert LABEL_TENANT not in podman_client.containers.get(two.id).labels

    provider.delete(one)
    assert [i.id for i in provider.list_instances()] == [two.id]
    provider.delete(one)  # already gone: fine


@pytest.mark.integration
def test_instances_resolve_each_other_on_the_named_network(make_provider, resource, node_name, podman_client) -> None:
    provider = make_provider()
    one = provider.create(spec(node_name("n1"), resource()))
    two = provider.create(spec(node_name("n2"), resource()))
    container = podman_client.containers.get(one.id)
    assert run_in(container, "hostname").strip() == one.name
    answer = run_in(container, "nslookup", two.name)
    assert two.address in answer
    net = podman_client.networks.get(provider.network)
    assert net.attrs["dns_enabled"] and net.attrs["labels"][LABEL_CLUSTER] == provider.cluster


@pytest.mark.integration
def test_seed_is_in_place_with_mode_0600_when_the_container_starts(
    make_provider, resource, node_name, podman_client
) -> None:
    provider = make_provider()
    inst = provider.create(spec(node_name("seed"), resource()))
    container = podman_client.containers.get(inst.id)

    # Written by the image's init at boot: the seed was there before start.
    boot = wait_for(lambda: _cat_or_empty(container, "/run/dcaas-seed.log"))
    assert f"hostname={inst.name}" in boot
    assert f"instance-id: {inst.id}" in boot and f"local-hostname: {inst.name}" in boot
    assert "user-data-mode=600" in boot

    content, mode = read_file(container, f"{SEED}/user-data")
    assert content.decode() == USER_DATA and mode == 0o600
    content, mode = read_file(container, f"{SEED}/meta-data")
    assert content.decode() == f"instance-id: {inst.id}\nlocal-hostname: {inst.name}\n" and mode == 0o644


def _cat_or_empty(container: Any, path: str) -> str:
    code, (out, _err) = container.exec_run(["cat", path], demux=True)
    return (out or b"").decode() if code == 0 else ""


@pytest.mark.integration
def test_list_and_delete_ignore_foreign_containers(make_provider, resource, node_name, foreign, podman_client) -> None:
    provider = make_provider()
    mine = provider.create(spec(node_name("mine"), resource()))
    unlabelled = foreign("stranger")
    other_cluster = foreign("neighbour", {LABEL_CLUSTER: "b-someone-else", LABEL_ROLE: "worker"})

    assert [i.id for i in provider.list_instances()] == [mine.id]
    for container in (unlabelled, other_cluster):
        fake = Instance(
            id=container.id, name=container.name, resource="small", status=InstanceStatus.ACTIVE, created=0.0
        )
        with pytest.raises(CloudError) as err:
            provider.delete(fake)
        assert err.value.kind == "config" and "refusing to delete" in str(err.value)
        # By name too: the id field is whatever identifier podman resolves.
        with pytest.raises(CloudError):
            provider.delete(Instance(id=container.name, name="x", resource="small", status=fake.status, created=0))
        container.reload()
        assert container.status == "running"


@pytest.mark.integration
def test_quota_is_enforced_and_reported_as_headroom(make_provider, resource, node_name, podman_client) -> None:
    provider = make_provider(quota={"physics": {"instances": 2, "cores": 3}, "default": {"memory_mb": 1024}})
    physics = resource("phys", tenant="physics", cores=2, memory_mb=256)
    shared = resource("shared", cores=1, memory_mb=512)
    unlimited = resource("chem", tenant="chemistry")

    assert provider.headroom(physics) == Headroom(instances=2, cores=3, memory_mb=None)
    provider.create(spec(node_name("p1"), physics))
    assert provider.headroom(physics) == Headroom(instances=1, cores=1, memory_mb=None)
    assert provider.headroom(physics).nodes_for(physics.cores, physics.memory_mb) == 0

    with pytest.raises(CloudError) as err:
        provider.create(spec(node_name("p2"), physics))
    assert err.value.kind == "quota"
    assert "tenant 'physics'" in str(err.value) and "cores 2+2 > 3" in str(err.value)
    assert not podman_client.containers.exists(node_name("p2"))

    # Resources without a tenant share the "default" quota.
    provider.create(spec(node_name("d1"), shared))
    provider.create(spec(node_name("d2"), shared))
    assert provider.headroom(shared) == Headroom(memory_mb=0)
    with pytest.raises(CloudError) as err:
        provider.create(spec(node_name("d3"), shared))
    assert err.value.kind == "quota" and "memory_mb 1024+512 > 1024" in str(err.value)

    assert provider.headroom(unlimited) == Headroom()
    provider.create(spec(node_name("c1"), unlimited))
    assert len(provider.list_instances()) == 4


@pytest.mark.integration
def test_missing_image_is_a_config_error_naming_it(make_provider, resource, node_name, podman_client) -> None:
    provider = make_provider()
    res = resource(image="localhost/dcaas/dcaas-b-no-such-image:1")
    with pytest.raises(CloudError) as err:
        provider.create(spec(node_name("noimg"), res))
    assert err.value.kind == "config"
    assert "localhost/dcaas/dcaas-b-no-such-image:1" in str(err.value) and "make images" in str(err.value)
    assert not podman_client.containers.exists(node_name("noimg"))


@pytest.mark.integration
def test_name_conflict_is_a_config_error(make_provider, resource, node_name) -> None:
    provider = make_provider()
    provider.create(spec(node_name("dup"), resource()))
    with pytest.raises(CloudError) as err:
        provider.create(spec(node_name("dup"), resource()))
    assert err.value.kind == "config" and "name conflict" in str(err.value)
    assert len(provider.list_instances()) == 1


@pytest.mark.integration
def test_failed_start_leaves_no_half_made_container(make_provider, resource, node_name, podman_client) -> None:
    provider = make_provider()
    res = resource(options={"command": ["/no/such/init"]})
    with pytest.raises(CloudError) as err:
        provider.create(spec(node_name("broken"), res))
    assert err.value.kind == "config" and "cannot run its command" in str(err.value)
    assert not podman_client.containers.exists(node_name("broken"))
    assert provider.list_instances() == []


@pytest.mark.integration
def test_instance_that_dies_is_error_with_its_exit_code_and_output(make_provider, resource, node_name) -> None:
    provider = make_provider()
    res = resource(options={"command": ["sh", "-c", "echo 'slurmd: fatal: no config' >&2; exit 7"]})
    inst = provider.create(spec(node_name("dies"), res))

    def failed() -> Instance | None:
        found = [i for i in provider.list_instances() if i.id == inst.id]
        return found[0] if found and found[0].status is InstanceStatus.ERROR else None

    dead = wait_for(failed)
    assert dead is not None and dead.address is None
    assert dead.fault is not None
    assert "exited with code 7" in dead.fault and "slurmd: fatal: no config" in dead.fault


@pytest.mark.integration
def test_stopped_instance_is_stopped(make_provider, resource, node_name, podman_client) -> None:
    provider = make_provider()
    inst = provider.create(spec(node_name("stop"), resource()))
    podman_client.containers.get(inst.id).stop(timeout=5)
    (listed,) = provider.list_instances()
    assert listed.status is InstanceStatus.STOPPED and listed.fault is None


@pytest.mark.integration
def test_adoption_after_engine_restart(make_provider, resource, node_name) -> None:
    first = make_provider(network=f"dcaas-{node_name('net')}")
    made = {first.create(spec(node_name(f"a{i}"), resource(f"r{i}"))) for i in range(3)}
    first.close()

    restarted = make_provider(network=f"dcaas-{node_name('net')}")
    assert set(restarted.list_instances()) == made
    victim = sorted(made, key=lambda i: i.name)[0]
    restarted.delete(victim)
    assert set(restarted.list_instances()) == made - {victim}


@pytest.mark.integration
def test_named_volume_is_shared_home(make_provider, resource, node_name, volume, podman_client) -> None:
    provider = make_provider(volumes={volume: "/home"})
    one = provider.create(spec(node_name("h1"), resource()))
    two = provider.create(spec(node_name("h2"), resource()))
    run_in(podman_client.containers.get(one.id), "sh", "-c", "mkdir -p /home/alice && echo hi > /home/alice/f")
    assert run_in(podman_client.containers.get(two.id), "cat", "/home/alice/f") == "hi\n"


@pytest.mark.integration
def test_missing_volume_is_a_config_error(make_provider, resource, node_name, cluster, podman_client) -> None:
    missing = f"dcaas-{cluster}-nohome"
    provider = make_provider(volumes={missing: "/home"})
    with pytest.raises(CloudError) as err:
        provider.create(spec(node_name("v1"), resource()))
    assert err.value.kind == "config" and f"volume {missing!r} does not exist" in str(err.value)
    assert not podman_client.volumes.exists(missing)


@pytest.mark.integration
def test_network_without_dns_is_refused(make_provider, resource, node_name) -> None:
    provider = make_provider(network="podman")
    with pytest.raises(CloudError) as err:
        provider.create(spec(node_name("nodns"), resource()))
    assert err.value.kind == "config" and "DNS disabled" in str(err.value)


@pytest.mark.integration
def test_resource_options_override_and_limits(make_provider, resource, node_name, podman_client, cluster) -> None:
    provider = make_provider(cap_add=["SYS_NICE"], extra_labels={"site": "a"})
    net = f"dcaas-{cluster}-alt"
    res = resource(
        cores=2,
        memory_mb=256,
        options={
            "enforce_limits": True,
            "network": net,
            "extra_labels": {"rack": "r1"},
            "cap_add": ["DAC_READ_SEARCH"],
        },
    )
    inst = provider.create(spec(node_name("lim"), res))
    attrs = podman_client.containers.get(inst.id).attrs
    host = attrs["HostConfig"]
    assert host["Memory"] == 256 * 1024 * 1024 and host["CpuQuota"] == 200_000
    # The resource's list replaces the cloud's.
    assert "CAP_DAC_READ_SEARCH" in attrs["EffectiveCaps"] and "CAP_SYS_NICE" not in attrs["EffectiveCaps"]
    assert list(attrs["NetworkSettings"]["Networks"]) == [net]
    assert inst.address == attrs["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert attrs["Config"]["Labels"]["site"] == "a" and attrs["Config"]["Labels"]["rack"] == "r1"
    assert podman_client.networks.exists(net)


@pytest.mark.integration
def test_host_mounts_are_bound_into_the_instance(make_provider, resource, node_name, podman_client, tmp_path) -> None:
    # The head node reaches podman's API through a bound socket; any host path works the same.
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from the host\n")
    provider = make_provider()
    head = resource("head", options={"mounts": {str(shared): "/mnt/host"}})
    inst = provider.create(spec(node_name("h1"), head, **{LABEL_ROLE: "head"}))
    assert inst.role == "head"
    code, (out, _err) = podman_client.containers.get(inst.id).exec_run(["cat", "/mnt/host/hello"], demux=True)
    assert code == 0 and out == b"from the host\n"


def test_mounts_need_absolute_paths(make_provider, resource) -> None:
    with pytest.raises(CloudError) as err:
        make_provider().launch_settings(resource("head", options={"mounts": {"relative": "/x"}}))
    assert err.value.kind == "config" and "mounts" in str(err.value) and "absolute" in str(err.value)
