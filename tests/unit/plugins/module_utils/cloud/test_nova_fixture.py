"""The test harness itself: the Nova fixture under concurrent clients, and the fault proxy.

The fault and crash tests (test_nova_faults.py, test_crash_consistency.py)
run two engines' worth of clients and an admin against one Nova at once and
trust the proxy to do exactly the fault it was told to: both are proven here
first, against the real Nova of the ``nova_cloud`` fixture (skipped without
.venv-nova: run hack/nova/setup.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from ansible_collections.dcaas.cluster.tests.fixtures.fault_proxy import (
    HANG,
    LOST,
    QUOTA,
    RESET,
    UNAVAILABLE,
    FaultProxy,
    route,
)

if TYPE_CHECKING:
    from ansible_collections.dcaas.cluster.tests.fixtures.nova import NovaCloud

pytest_plugins = ["ansible_collections.dcaas.cluster.tests.fixtures.nova"]

# How long the three clients hammer Nova; more with DCAAS_NOVA_STRESS_SECONDS.
STRESS_SECONDS = float(os.environ.get("DCAAS_NOVA_STRESS_SECONDS", "15"))
MAX_REQUESTS = 400  # per client: bounds the test whatever the speed of the machine
DEADLINE = 20.0  # seconds any one request may take, queueing behind the others included


def _create(conn: Any, nova_cloud: NovaCloud, cluster: str, name: str, flavor: str = "c1.small") -> Any:
    return conn.compute.create_server(
        name=name,
        flavor_id=conn.compute.find_flavor(flavor, ignore_missing=False).id,
        image_id=nova_cloud.image["id"],
        networks=[{"uuid": nova_cloud.network["id"]}],
        metadata={nova_cloud.test_mark: cluster},
    )


def test_a_cell_switch_cannot_deadlock_the_fixture(nova_cloud):
    """The deadlock, replayed step by step in a harness like serve.py's (tests/fixtures/nova_cells_probe.py)."""
    probe = os.path.join(os.path.dirname(__file__), *[os.pardir] * 5, "tests", "fixtures", "nova_cells_probe.py")
    proc = subprocess.run([nova_cloud.python, probe], capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr[-3000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["stuck"] == [], f"threads stuck behind a cell switch: {answer}"


def test_three_concurrent_clients_get_every_answer_in_time(nova_cloud, nova_cluster):
    """Two projects create, list and delete servers while an admin lists all projects.

    This is what deadlocked the fixture once (two engines and an admin
    client). Every request must be answered within DEADLINE: a 403 (quota:
    deletes in Nova finish after they are accepted) is an answer, a timeout,
    a connection failure or a 5xx is not.
    """
    from openstack import exceptions as sdk

    stop = time.monotonic() + STRESS_SECONDS
    failures: list[str] = []
    answered: dict[str, int] = {}
    slowest: list[float] = [0.0]

    def timed(who: str, call: Any) -> Any:
        started = time.monotonic()
        try:
            return call()
        except sdk.HttpException as exc:
            if exc.status_code != 403:
                failures.append(f"{who}: {type(exc).__name__}: {str(exc)[:200]}")
        except Exception as exc:  # a timeout or a dropped connection: the fixture failed
            failures.append(f"{who}: {type(exc).__name__}: {str(exc)[:200]}")
        finally:
            took = time.monotonic() - started
            slowest[0] = max(slowest[0], took)
            answered[who] = answered.get(who, 0) + 1
            if took > DEADLINE:
                failures.append(f"{who}: a request took {took:.1f} s")
        return None

    def project_client(project: str, keep: int) -> None:
        conn = nova_cloud.connect(project, timeout=DEADLINE)
        mine: list[str] = []
        n = 0
        try:
            while time.monotonic() < stop and n < MAX_REQUESTS and len(failures) < 5:
                n += 1
                if len(mine) < keep and n % 3 == 1:
                    name = f"{nova_cluster}-{n}"
                    # Every fifth create in tenant-a is too big for any host: NoValidHost, and
                    # the conductor buries the server in cell0, as a failing engine's would be.
                    flavor = "m1.xlarge" if project == "tenant-a" and n % 5 == 1 else "c1.small"
                    server = timed(
                        project, lambda name=name, flavor=flavor: _create(conn, nova_cloud, nova_cluster, name, flavor)
                    )
                    if server is not None:
                        mine.append(server.id)
                elif mine and n % 3 == 2:
                    victim = mine.pop(0)
                    timed(project, lambda victim=victim: conn.compute.delete_server(victim, ignore_missing=True))
                else:
                    timed(project, lambda: list(conn.compute.servers(details=True)))
        finally:
            conn.close()

    def admin_client() -> None:
        conn = nova_cloud.connect(nova_cloud.admin_cloud, timeout=DEADLINE)
        n = 0
        try:
            while time.monotonic() < stop and n < MAX_REQUESTS and len(failures) < 5:
                n += 1
                timed("admin", lambda: list(conn.compute.servers(details=True, all_projects=True)))
        finally:
            conn.close()

    # Daemons: a client stuck for good must not keep pytest from exiting.
    threads = [
        threading.Thread(target=project_client, args=("tenant-a", 2), daemon=True),
        threading.Thread(target=project_client, args=("tenant-b", 1), daemon=True),
        threading.Thread(target=admin_client, daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(STRESS_SECONDS + 3 * DEADLINE)
    stuck = [t.name for t in threads if t.is_alive()]
    print(f"\nnova fixture under 3 clients: answered={answered} slowest={slowest[0]:.2f}s failures={len(failures)}")
    assert not stuck, f"clients still waiting for Nova: {stuck}; stacks: kill -USR1 {nova_cloud.pid}"
    assert failures == [], failures
    assert set(answered) == {"tenant-a", "tenant-b", "admin"} and min(answered.values()) >= 3, answered


# --- the fault proxy -------------------------------------------------------------


@pytest.fixture
def proxy(nova_cloud: NovaCloud) -> Any:
    made = FaultProxy(nova_cloud.endpoint)
    yield made
    made.close()


@pytest.fixture
def via_proxy(nova_cloud: NovaCloud, proxy: FaultProxy, tmp_path: Any) -> Any:
    """A tenant-a connection through the proxy, with a short client timeout (for HANG)."""
    from openstack import connection
    from openstack.config import loader

    clouds = nova_cloud.clouds_via(proxy.endpoint, str(tmp_path / "clouds.yaml"))
    config = loader.OpenStackConfig(config_files=[clouds]).get_one(cloud="tenant-a", api_timeout=2)
    conn = connection.Connection(config=config)
    yield conn
    conn.close()


def test_route_names_requests_without_ids_and_versions():
    assert route("/v2.1/servers") == "/servers"
    assert route("/v2.1/servers/detail?all_tenants=True") == "/servers/detail"
    assert route("/v2.1/servers/0b0c1a5e-1c8a-4c61-9d1e-7e1f2d3c4b5a/action") == "/servers/{id}/action"
    assert route("/v2.1") == "/" and route("/v2.1/") == "/"


def test_proxy_passes_through_and_counts(via_proxy, proxy):
    assert list(via_proxy.compute.servers()) is not None
    assert via_proxy.compute.get_limits().absolute.instances == 3
    assert proxy.count("GET", "/servers/detail") == 1 and proxy.count("GET", "/limits") == 1
    assert proxy.forwarded[("GET", "/limits")] == 1


def test_proxy_answers_quota_and_503_in_novas_shape(via_proxy, proxy, nova_cloud, nova_cluster):
    from openstack import exceptions as sdk

    proxy.inject(QUOTA, "POST", "/servers")
    proxy.inject(UNAVAILABLE, "GET", "/limits", times=1)
    with pytest.raises(sdk.HttpException) as quota:
        _create(via_proxy, nova_cloud, nova_cluster, f"{nova_cluster}-q")
    assert quota.value.status_code == 403 and "Quota exceeded" in str(quota.value)
    with pytest.raises(sdk.HttpException) as unavailable:
        via_proxy.compute.get_limits()
    assert unavailable.value.status_code == 503
    assert via_proxy.compute.get_limits().absolute.instances == 3  # times=1: once only
    assert proxy.count("POST", "/servers") == 1 and proxy.forwarded[("POST", "/servers")] == 0


@pytest.mark.parametrize("fault", [HANG, RESET], ids=["hang", "reset"])
def test_proxy_hangs_or_resets_a_listing(via_proxy, proxy, fault):
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    proxy.inject(fault, "GET", "/servers/detail", times=1)
    started = time.monotonic()
    with pytest.raises((ksa.ConnectionError, sdk.SDKException)):
        list(via_proxy.compute.servers())
    if fault is HANG:
        assert 1.5 < time.monotonic() - started < 10  # the client's timeout (2 s) ended it
    assert list(via_proxy.compute.servers()) == []


def test_proxy_loses_a_create_that_nova_carried_out(via_proxy, proxy, nova_cloud, nova_cluster, nova_admin):
    from keystoneauth1 import exceptions as ksa

    proxy.inject(LOST, "POST", "/servers", times=1)
    with pytest.raises(ksa.ConnectionError):
        _create(via_proxy, nova_cloud, nova_cluster, f"{nova_cluster}-lost")
    assert proxy.forwarded[("POST", "/servers")] == 1
    made = [s for s in nova_admin.compute.servers(all_projects=True) if s.name == f"{nova_cluster}-lost"]
    assert len(made) == 1  # the client never heard of it


def test_proxy_refuses_then_comes_up(via_proxy, proxy):
    from keystoneauth1 import exceptions as ksa

    via_proxy.compute.get_limits()  # version discovery, which openstacksdk caches
    proxy.stop_listening()
    with pytest.raises(ksa.ConnectFailure):
        via_proxy.compute.get_limits()
    proxy.start_listening()
    assert via_proxy.compute.get_limits().absolute.instances == 3

    proxy.refuse_connections(2)
    for _attempt in range(2):
        with pytest.raises(ksa.ConnectionError):
            via_proxy.compute.get_limits()
    assert proxy.refused == 2
    assert via_proxy.compute.get_limits().absolute.instances == 3


def test_proxy_can_stop_right_after_a_fault(via_proxy, proxy, nova_cloud, nova_cluster):
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    via_proxy.compute.get_limits()
    proxy.inject(QUOTA, "POST", "/servers", then=proxy.stop_listening)
    with pytest.raises(sdk.HttpException):
        _create(via_proxy, nova_cloud, nova_cluster, f"{nova_cluster}-q")
    with pytest.raises(ksa.ConnectFailure):
        via_proxy.compute.get_limits()
