"""The test harness itself: the Nova fixture under concurrent clients.

Two engines and an admin client against one Nova once deadlocked the
fixture; proven here against the real Nova of the ``nova_cloud`` fixture
(skipped without .venv-nova: run hack/nova/setup.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

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
