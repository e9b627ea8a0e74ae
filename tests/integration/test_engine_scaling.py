"""The engine scales real Slurm on the local podman cloud, end to end.

Real components only: slurmctld in a head container (configless, dynamic
nodes), the engine's Slurm adapter running squeue/sinfo/scontrol there, the
local provider creating worker containers through podman's REST API, workers
joining through cloud-init user-data. The test plays the daemon: one
reconcile pass every two seconds.

Shown: jobs submitted -> exactly the workers they need launched, none extra
while they boot -> every job COMPLETED, the 2-node job on two workers sharing
/home -> workers drained and deleted after the idle timeout -> no containers
left, slurmctld never restarted. Along the way the Ansible front ends
(cluster_info module, inventory plugin) are run against the live cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from slurm_env import (
    FAILED_STATES,
    WORKER_IMAGE,
    ansible_env,
    controller_pid,
    job_state,
    our_containers,
    podman,
    sbatch,
)

from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import build_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
PASS_INTERVAL = 2.0


def engine_config(env, state_file: str) -> dict:
    # One cluster name per test environment: labels and node names stay apart
    # from anything else on this machine.
    users = [
        ["useradd", "--no-create-home", "--home-dir", f"/home/{u}", "--uid", str(uid), "--shell", "/bin/bash", u]
        for u, uid in sorted(env.users.items())
    ]
    return {
        "cluster": env.prefix,
        "wlm": {
            "type": "slurm",
            "command_prefix": ["podman", "exec", env.head],
            "options": {"conf_server": env.conf_server, "munge_key_file": env.munge_key_file},
        },
        "cloud": {
            "provider": "local",
            "options": {
                "network": env.network,
                "volumes": {env.volume: "/home"},
            },
        },
        "resources": [
            {"name": "small", "flavor": "local", "image": WORKER_IMAGE, "cores": 2, "memory_mb": 1024, "max": 4}
        ],
        # Stand-in for the LDAP client the worker role bakes in (issue 3).
        "worker_user_data": {"runcmd": users},
        "timers": {"idle_timeout": 20, "boot_timeout": 180, "down_timeout": 60, "interval": 2},
        "state_file": state_file,
    }


def run_ansible(args: list[str], cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def engine_cfg(slurm_cluster, tmp_path):
    cfg_dict = engine_config(slurm_cluster, str(tmp_path / "state.json"))
    yield cfg_dict
    # Whatever the outcome, leave no worker behind.
    for name in our_containers(cfg_dict["cluster"]):
        podman("rm", "--force", "--time", "0", name, check=False)


def test_jobs_scale_workers_up_and_back_to_zero(slurm_cluster, engine_cfg, tmp_path):
    env = slurm_cluster
    cfg_dict = engine_cfg
    cfg = parse(cfg_dict)
    engine = build_engine(cfg)
    pid_before = controller_pid(env)

    # A realistic mix as user alice: four 1-core jobs, a 2-node job writing
    # to the shared /home, and a job no worker could ever run.
    singles = [sbatch(env, "--wrap", f"sleep 6; hostname > /home/alice/single-{i}") for i in range(4)]
    mpi = sbatch(env, "-N2", "-n2", "--wrap", "srun hostname > /home/alice/mpi.out")
    huge = sbatch(env, "-c", "64", "--wrap", "true")
    jobs = [*singles, mpi]
    # The daemon's cheap look between passes sees every one of them pending.
    assert {*jobs, huge} <= engine.wlm.pending_ids()

    # 4 x 1 core pack onto two 2-core workers; the 2-node job needs two more.
    expected_workers = 4
    launched: list[str] = []
    first_plan = None
    unfit_seen = set()
    inventory_checked = info_checked = False
    t0 = time.monotonic()
    first_ready = None
    deadline = t0 + 240
    while time.monotonic() < deadline:
        result = engine.run_once()
        assert not result.errors, result.errors
        if first_plan is None:
            first_plan = result.plan
        launched += result.launched
        unfit_seen |= {u.job for u in result.plan.unfit}
        states = [job_state(env, j) for j in jobs]
        if first_ready is None and any(s in ("RUNNING", "COMPLETED") for s in states):
            first_ready = time.monotonic() - t0
        if not inventory_checked and any(n.state.value in ("idle", "busy") for n in result.observed.nodes):
            inventory_checked = check_inventory(env, cfg_dict, tmp_path)
        if not info_checked and result.observed.nodes:
            info_checked = check_cluster_info(cfg_dict, tmp_path)
        if all(s == "COMPLETED" for s in states):
            break
        failed = {j: s for j, s in zip(jobs, states) if s in FAILED_STATES}
        assert not failed, f"jobs ended badly: {failed}"
        time.sleep(PASS_INTERVAL)
    all_done = time.monotonic() - t0
    assert all(job_state(env, j) == "COMPLETED" for j in jobs), {j: job_state(env, j) for j in jobs}

    # Exactly what the queue needed, all in the first pass, none while booting.
    assert sum(x.count for x in first_plan.launches) == expected_workers
    assert len(launched) == expected_workers, launched
    assert huge in unfit_seen
    assert inventory_checked and info_checked

    # The 2-node job ran on two different workers and both wrote to the shared /home.
    hosts = env.exec(["cat", "/home/alice/mpi.out"]).stdout.split()
    assert len(set(hosts)) == 2 and set(hosts) <= set(launched)
    owner = env.exec(["stat", "-c", "%u", "/home/alice/mpi.out"]).stdout.strip()
    assert owner == "5001"  # ran as alice, not root

    # The unfit job would wait forever: cancel it, then watch the cluster empty.
    env.exec(["scancel", huge])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        engine.run_once()
        if not our_containers(cfg.cluster):
            break
        time.sleep(PASS_INTERVAL)
    back_to_zero = time.monotonic() - t0
    assert our_containers(cfg.cluster) == []
    nodes = env.exec(["sinfo", "--noheader", "--Node", "--format", "%N"]).stdout.split()
    assert not [n for n in nodes if n.startswith(cfg.cluster)], nodes
    assert controller_pid(env) == pid_before, "slurmctld was restarted"
    print(
        f"\n[engine-scaling] first job running after {first_ready:.1f}s, all jobs done after {all_done:.1f}s, "
        f"back to zero workers after {back_to_zero:.1f}s; {len(launched)} workers launched"
    )


def check_inventory(env, cfg_dict: dict, tmp_path) -> bool:
    """ansible-inventory --graph shows the live workers grouped by state."""
    inv = tmp_path / "dynamic_cluster.yml"
    inv.write_text(json.dumps({"plugin": "dcaas.cluster.dynamic_cluster", "config": cfg_dict}))
    proc = run_ansible(["ansible-inventory", "-i", str(inv), "--list"], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    state_groups = [g for g in data if g.startswith("dcaas_state_")]
    members = {h for g in state_groups for h in data[g].get("hosts", [])}
    assert members and all(h.startswith(cfg_dict["cluster"]) for h in members), data
    graph = run_ansible(["ansible-inventory", "-i", str(inv), "--graph"], cwd=str(tmp_path))
    assert graph.returncode == 0 and "@dcaas_state_" in graph.stdout, graph.stderr
    return True


def check_cluster_info(cfg_dict: dict, tmp_path) -> bool:
    """The cluster_info module, run by Ansible itself (module_utils packaged by AnsiballZ)."""
    cfg_file = tmp_path / "engine.json"
    cfg_file.write_text(json.dumps(cfg_dict))
    proc = run_ansible(
        [
            "ansible",
            "localhost",
            "-m",
            "dcaas.cluster.cluster_info",
            "-a",
            f"config_file={cfg_file}",
            "-o",
            # the venv's Python has podman-py, as a head node has once the role installs it
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"changed": false' in proc.stdout and cfg_dict["cluster"] in proc.stdout
    return True
