# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real Slurm 22.05 in containers: a worker booted from user-data joins as a
dynamic node, runs a user's job, and is drained, resumed and deleted through
the engine's Slurm adapter, while slurmctld keeps running throughout.

Needs root, podman and the images (hack/build-images.sh). The fixtures come
from slurm_env.py (a conftest.py imports them, or run with ``-p slurm_env``).
"""

from __future__ import annotations

import time

import pytest
from slurm_env import SlurmEnv, controller_pid, podman, wait_for

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Resource
from ansible_collections.dcaas.cluster.plugins.module_utils.naming import DRAIN_REASON_PREFIX
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = Resource(name="small", flavor="local-2c", image="slurm-worker", cores=2, memory_mb=2000)


def wlm_node(env: SlurmEnv, name: str):
    return {n.name: n for n in env.manager().nodes()}.get(name)


def container_ip(env: SlurmEnv, name: str) -> str:
    fmt = f"{{{{(index .NetworkSettings.Networks {env.network!r}).IPAddress}}}}".replace("'", '"')
    return podman("inspect", "--format", fmt, name).strip()


def test_worker_joins_runs_a_job_and_is_removed(slurm_cluster: SlurmEnv) -> None:
    env = slurm_cluster
    pid = controller_pid(env)
    mgr = env.manager()
    name = f"{env.prefix}-small-1"

    worker = env.start_worker(name, env.user_data(name, SMALL))
    t0 = time.monotonic()
    run = env.exec(["srun", "--nodes=1", f"--nodelist={name}", "sh", "-c", "hostname; id -un"], user="alice")
    srun_s = time.monotonic() - t0
    assert run.stdout.split() == [name, "alice"]
    print(
        f"\n{name}: create+seed {worker.created_s:.2f} s, start->registered {worker.registered_s:.2f} s, "
        f"srun {srun_s:.2f} s"
    )

    node = wlm_node(env, name)
    assert node is not None and node.state == "idle"
    assert node.features == {"dcaas", "dcaas_small"}
    assert (node.cores, node.memory_mb) == (2, 2000)
    # Slurm 22.05 records the address the registration came from.
    assert node.address == container_ip(env, name)

    mgr.drain(name, "idle for 600 s")
    node = wlm_node(env, name)
    assert node.state == "drained" and node.reason == f"{DRAIN_REASON_PREFIX} idle for 600 s"
    mgr.resume(name)
    # RESUME makes slurmctld ping the node: IDLE+NOT_RESPONDING ("down") for a moment.
    wait_for("the node to be idle again", lambda: wlm_node(env, name).state == "idle", 30)

    # A node with a job: draining, and slurmctld refuses to forget it.
    job = env.exec(
        ["sbatch", "--parsable", "--output=/dev/null", f"--nodelist={name}", "--wrap", "sleep 300"], user="alice"
    ).stdout.strip()
    wait_for("the job to run", lambda: name in [n for j in mgr.jobs() if j.id == job for n in j.node_names], 30)
    mgr.drain(name, f"{DRAIN_REASON_PREFIX} idle")
    assert wlm_node(env, name).state == "draining"
    with pytest.raises(CommandError, match="busy"):
        mgr.remove(name)
    env.exec(["scancel", job])
    wait_for("the node to be drained", lambda: wlm_node(env, name).state == "drained", 30)

    mgr.remove(name)
    assert wlm_node(env, name) is None
    mgr.remove(name)  # already gone: nothing to do
    assert controller_pid(env) == pid, "slurmctld was restarted"


def test_restarted_worker_keeps_its_old_address_until_updated(slurm_cluster: SlurmEnv) -> None:
    """A restarted container gets a new IP; Slurm 22.05 keeps the one the node
    first registered from, so the node is unreachable until NodeAddr is updated."""
    env = slurm_cluster
    mgr = env.manager()
    name = f"{env.prefix}-small-2"
    env.start_worker(name, env.user_data(name, SMALL))
    old = container_ip(env, name)
    # Hold the old address so the restart cannot get it back.
    holder = f"{env.prefix}-ipholder"
    podman(
        "run",
        "--detach",
        "--name",
        holder,
        "--network",
        env.network,
        "--label",
        f"dcaas.test-env={env.prefix}",
        "--entrypoint",
        "sleep",
        "localhost/dcaas/slurm-worker:bookworm",
        "infinity",
    )
    env.workers.append(holder)
    podman("restart", "--time", "0", name)
    new = container_ip(env, name)
    assert new != old
    # slurmd comes back (enabled by the first boot's runcmd) and registers again...
    wait_for(
        "slurmd to run again",
        lambda: env.exec(["systemctl", "is-active", "slurmd"], container=name, check=False).stdout.strip() == "active",
        30,
    )
    time.sleep(1)
    # ...but slurmctld still talks to the old address.
    assert wlm_node(env, name).address == old

    mgr.update_address(name, new)
    assert wlm_node(env, name).address == new

    # slurmd may still be starting (systemd calls it active before it
    # listens; slow on a loaded host): a job step reaches it within a minute.
    def step_output() -> str:
        argv = ["srun", "--nodes=1", f"--nodelist={name}", "--immediate=20", "hostname"]
        return env.exec(argv, user="alice", timeout=60, check=False).stdout.strip()

    assert wait_for("a job step on the restarted worker", step_output, 90, interval=2) == name
