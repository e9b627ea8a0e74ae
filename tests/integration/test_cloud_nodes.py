"""Cloud nodes (wlm.nodes: cloud) on real Slurm 22.05, end to end.

Real components only: slurmctld in a head container with power saving and
``State=CLOUD`` nodes (the keys the head_node role renders in cloud mode),
the engine's Slurm adapter, the local podman cloud, workers joining through
cloud-init. The test plays the daemon: one pass every two seconds.

Shown: Slurm places the jobs on powered-down nodes at once -> the engine
starts instances named as those nodes, and no others -> the jobs complete
(the 2-node job on two nodes) -> a pending job's planned start and nodes are
read -> idle nodes are powered down in Slurm and their instances deleted ->
every node is off again, no container left, slurmctld never restarted.
And nodes powered up with no job on them (scontrol POWER_UP first): for
``min``, and as the spare while jobs keep coming, until the resource is quiet.
"""

from __future__ import annotations

import time

import pytest
from slurm_env import FAILED_STATES, WORKER_IMAGE, controller_pid, job_state, our_containers, podman, sbatch, wait_for

from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import build_engine
from ansible_collections.dcaas.cluster.plugins.module_utils.model import NodeState

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASS_INTERVAL = 2.0
MAX_NODES = 3

# What the head_node role adds to slurm.conf with head_node_cloud_nodes:
# cloud (roles/head_node, checked by tests/unit/roles); short timeouts here.
POWER_SAVING = """
SlurmctldParameters=enable_configless,cloud_reg_addrs,idle_on_node_suspend
PrivateData=cloud
ResumeProgram=/bin/true
SuspendProgram=/bin/true
SuspendTime=2592000
ResumeTimeout=300
SuspendTimeout=5
ResumeRate=0
SuspendRate=0
SchedulerParameters=sched_interval=2
NodeName={prefix}-small-[1-{count}] State=CLOUD CPUs=2 RealMemory=1024 Feature=dcaas,dcaas_small
"""


def cloud_head(env) -> None:
    """Replace the image's dynamic-node slurm.conf with a cloud-node one and restart slurmctld, once."""
    conf = env.exec(["cat", "/etc/slurm/slurm.conf"]).stdout
    if "State=CLOUD" in conf:
        return  # done by an earlier test of this module (same head)
    lines = [
        line
        for line in conf.splitlines()
        if not line.startswith(("# managed by dcaas-slurm-setup", "SlurmctldParameters=", "MaxNodeCount="))
    ]
    text = "\n".join(lines) + POWER_SAVING.format(prefix=env.prefix, count=MAX_NODES)
    podman("exec", "-i", env.head, "sh", "-c", "cat > /etc/slurm/slurm.conf", input_text=text)
    env.exec(["systemctl", "restart", "slurmctld"])
    wait_for("slurmctld", lambda: "is UP" in env.exec(["scontrol", "ping"], check=False).stdout, 60, interval=0.2)


def sinfo_states(env) -> dict[str, str]:
    out = env.exec(["sinfo", "--noheader", "--Node", "--format", "%N %T"]).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


@pytest.fixture
def cloud_cfg(slurm_cluster, tmp_path):
    env = slurm_cluster
    cloud_head(env)
    users = [
        ["useradd", "--no-create-home", "--home-dir", f"/home/{u}", "--uid", str(uid), "--shell", "/bin/bash", u]
        for u, uid in sorted(env.users.items())
    ]
    cfg = {
        # The node names are <cluster>-<resource>-<n>: the cluster is the prefix.
        "cluster": env.prefix,
        "wlm": {
            "type": "slurm",
            "nodes": "cloud",
            "command_prefix": ["podman", "exec", env.head],
            "options": {"conf_server": env.conf_server, "munge_key_file": env.munge_key_file},
        },
        "cloud": {"provider": "local", "options": {"network": env.network, "volumes": {env.volume: "/home"}}},
        "resources": [
            {
                "name": "small",
                "flavor": "local",
                "image": WORKER_IMAGE,
                "cores": 2,
                "memory_mb": 1024,
                "max": MAX_NODES,
            }
        ],
        "worker_user_data": {"runcmd": users},
        # quiet 0: no spare, the idle timeout at all times (the spare has its own test)
        "timers": {
            "idle_timeout": 15,
            "boot_timeout": 120,
            "down_timeout": 60,
            "interval": 2,
            "prewarm": 0,
            "quiet": 0,
        },
        "state_file": str(tmp_path / "state.json"),
    }
    yield cfg
    for name in our_containers(cfg["cluster"]):
        podman("rm", "--force", "--time", "0", name, check=False)


def test_cloud_nodes_power_up_for_jobs_and_down_when_idle(slurm_cluster, cloud_cfg):
    env = slurm_cluster
    cfg = parse(cloud_cfg)
    engine = build_engine(cfg)
    pid_before = controller_pid(env)
    names = [f"{env.prefix}-small-{i}" for i in range(1, MAX_NODES + 1)]

    # Every node is known to Slurm and off; the engine sees them off.
    assert sinfo_states(env) == dict.fromkeys(names, "idle~")
    first = engine.run_once()
    assert not first.errors and not first.warnings, (first.errors, first.warnings)
    assert {n.name: n.state for n in first.observed.nodes} == dict.fromkeys(names, NodeState.OFF)
    assert first.launched == [] and our_containers(cfg.cluster) == []

    # A 1-node job and a 2-node job, exclusive: Slurm places them on three
    # nodes that are off, at once (CONFIGURING), and the daemon's cheap look
    # sees them; a third job waits for them with a planned start. (The first
    # runs 20 s: Slurm's backfill plans the waiting job's start only on its
    # next cycle, and on a loaded machine the passes must still see it.)
    single = sbatch(env, "--exclusive", "-t", "2", "--wrap", "sleep 20; hostname > /home/alice/single.out")
    pair = sbatch(env, "--exclusive", "-N2", "-t", "2", "--wrap", "srun hostname > /home/alice/pair.out")
    wait_for("the jobs to be placed", lambda: all(job_state(env, j) == "CONFIGURING" for j in (single, pair)), 30)
    later = sbatch(env, "--exclusive", "-N3", "-t", "1", "--wrap", "true")
    assert {single, pair} <= engine.wlm.pending_ids()

    launched: list[str] = []
    completed: set[str] = set()
    planned = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        result = engine.run_once()
        assert not result.errors, result.errors
        launched += result.launched
        for job in result.observed.jobs:
            if job.id == later and job.start_time is not None and planned is None:
                planned = job
        states = {j: job_state(env, j) for j in (single, pair, later) if j not in completed}
        completed |= {j for j, s in states.items() if s == "COMPLETED"}
        if len(completed) == 3:
            break
        # (slurmctld forgets a finished job after MinJobAge: GONE after COMPLETED is fine)
        failed = {j: s for j, s in states.items() if s in FAILED_STATES}
        assert not failed, f"jobs ended badly: {failed}"
        time.sleep(PASS_INTERVAL)
    assert completed == {single, pair, later}

    # Instances are named as the nodes Slurm powered up, and only those. A
    # node may be powered up twice: one that became idle while the waiting
    # job's planned start (from the time limits) was far ahead is powered
    # down at once, and up again when that job is placed on it.
    assert set(launched) == set(names), launched
    pair_hosts = env.exec(["cat", "/home/alice/pair.out"]).stdout.split()
    assert len(set(pair_hosts)) == 2 and set(pair_hosts) <= set(names)
    # Slurm's plan for the waiting job was read: a start time and all nodes.
    assert planned is not None and set(planned.planned_nodes) == set(names), planned

    # Idle: powered down in Slurm, instances deleted, nodes off again.
    deadline = time.monotonic() + 120
    done = []
    while time.monotonic() < deadline:
        result = engine.run_once()
        assert not result.errors, result.errors
        done += result.done
        if not our_containers(cfg.cluster) and all(s == "idle~" for s in sinfo_states(env).values()):
            break
        time.sleep(PASS_INTERVAL)
    assert our_containers(cfg.cluster) == []
    assert sinfo_states(env) == dict.fromkeys(names, "idle~")
    assert {d["node"] for d in done if d["action"] == "power_down"} == set(names)
    assert controller_pid(env) == pid_before, "slurmctld was restarted"
    print(f"\n[cloud-nodes] {len(launched)} power-ups for 3 jobs on {MAX_NODES} nodes; all off again")


def test_cloud_node_powered_up_for_min_without_a_job(slurm_cluster, cloud_cfg):
    """min: 1 powers an off node up that Slurm placed no job on: the engine
    tells Slurm first (POWER_UP), so the node is listed powering up, not off,
    while its instance boots, and the instance is kept. Slurm then places a
    job on the node that is up rather than powering up another one."""
    env = slurm_cluster
    cloud_cfg["resources"][0]["min"] = 1
    engine = build_engine(parse(cloud_cfg))
    names = [f"{env.prefix}-small-{i}" for i in range(1, MAX_NODES + 1)]
    assert sinfo_states(env) == dict.fromkeys(names, "idle~")

    first = engine.run_once()
    assert not first.errors, first.errors
    assert first.launched == [names[0]], first.launched
    # Listed powering up (sinfo's '#'), not off ('~'), before the instance registers.
    wait_for("POWER_UP", lambda: sinfo_states(env)[names[0]] == "idle#", 10, 0.2)

    # It joins and stays: past idle_timeout (15 s) no pass deletes it.
    wait_for("the min node to join", lambda: (engine.run_once(), sinfo_states(env))[1][names[0]] == "idle", 120, 2)
    done = []
    for _pass in range(10):
        result = engine.run_once()
        assert not result.errors and not result.launched, (result.errors, result.launched)
        done += result.done
        time.sleep(PASS_INTERVAL)
    assert done == [] and our_containers(env.prefix) == [names[0]]
    assert sinfo_states(env) == {names[0]: "idle", **dict.fromkeys(names[1:], "idle~")}

    job = sbatch(env, "-N1", "-t", "1", "--wrap", "hostname > /home/alice/min.out")
    wait_for("the job", lambda: job_state(env, job) in ("COMPLETED", *FAILED_STATES), 60, 1)
    assert env.exec(["cat", "/home/alice/min.out"]).stdout.split() == [names[0]]
    assert engine.run_once().launched == []

    # min back to 0: the node is powered down and its instance deleted.
    cloud_cfg["resources"][0]["min"] = 0
    engine = build_engine(parse(cloud_cfg))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (our_containers(env.prefix) or set(sinfo_states(env).values()) != {"idle~"}):
        assert not engine.run_once().errors
        time.sleep(PASS_INTERVAL)
    assert our_containers(env.prefix) == []
    assert sinfo_states(env) == dict.fromkeys(names, "idle~")


def test_cloud_nodes_keep_a_spare_while_jobs_come_and_go_when_quiet(slurm_cluster, cloud_cfg):
    """spare 1: while jobs come, one node more than the jobs use is kept up,
    and the next job starts on it at once (Slurm prefers a node that is up).
    quiet 120 s after the last submit, idle nodes go after prewarm (2 s)."""
    env = slurm_cluster
    cloud_cfg["resources"][0]["spare"] = 1
    # quiet well past a boot plus Slurm's 30 s check of CONFIGURING jobs, so
    # that the resource is still active when the first job runs, under load too
    cloud_cfg["timers"].update({"quiet": 120, "prewarm": 2, "idle_timeout": 600})
    engine = build_engine(parse(cloud_cfg))
    names = [f"{env.prefix}-small-{i}" for i in range(1, MAX_NODES + 1)]
    assert sinfo_states(env) == dict.fromkeys(names, "idle~")
    assert engine.run_once().launched == []  # no job came yet: no spare

    first = sbatch(env, "--exclusive", "-N1", "-t", "2", "--wrap", "sleep 60")
    launched: list[str] = []

    def spare_up() -> bool:
        launched.extend(engine.run_once().launched)
        return list(sinfo_states(env).values()).count("idle") == 1 and job_state(env, first) == "RUNNING"

    # The job's node and the spare: two power-ups, the spare joins idle.
    wait_for("the job's node and a spare", spare_up, 180, PASS_INTERVAL)
    assert len(launched) == 2, launched
    spare = next(n for n, s in sinfo_states(env).items() if s == "idle")

    # The next job runs on the spare at once (Slurm picks the idle node that is up, not an off one).
    second = sbatch(env, "--exclusive", "-N1", "-t", "1", "--wrap", "hostname > /home/alice/spare.out")
    wait_for("the second job", lambda: job_state(env, second) in ("COMPLETED", *FAILED_STATES), 30, 0.5)
    assert env.exec(["cat", "/home/alice/spare.out"]).stdout.split() == [spare]

    # Quiet 120 s after the last submit: every node goes (after prewarm, not idle_timeout 600 s).
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (our_containers(env.prefix) or set(sinfo_states(env).values()) != {"idle~"}):
        result = engine.run_once()
        assert not result.errors, result.errors
        launched += result.launched
        time.sleep(PASS_INTERVAL)
    assert our_containers(env.prefix) == []
    assert sinfo_states(env) == dict.fromkeys(names, "idle~")
    print(f"\n[cloud-nodes] spare: {len(launched)} power-ups for 2 jobs")
