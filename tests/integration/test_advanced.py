"""The Advanced architecture on the local cloud, end to end (playbooks/advanced.yml).

Deploys inventories/local-advanced: dedicated LDAP, NFS and head containers
on two zone networks, a static worker, and an engine with two tenants'
pools (physics in az1, chemistry in az2, each with a one-node quota) and a
shared pool (az2). Then, as LDAP users, alice submits three whole-node jobs
to account/partition physics (more than her tenant's quota) and bob one
job that asks for the chemistry pool's feature. Shown:

- the engine launches the tenant's own pool first (one phys, one chem
  worker, each in its zone) and sends only the physics overflow to the
  shared pool (two workers), all in its first pass after the submit;
- Slurm runs physics jobs only on phys or shared nodes and the chemistry
  job on the chem node; every job COMPLETED;
- the static worker is never drained, restarted or deleted;
- every cloud worker is drained and deleted again after the idle timeout.

Everything is removed by playbooks/destroy.yml afterwards, also on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from slurm_env import FAILED_STATES, ansible_env, podman

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
INVENTORY = os.path.join(ROOT, "inventories", "local-advanced")
CLUSTER = "adv"
HEAD = "adv-head"
STATIC = "adv-static1"
BASE_IMAGE = "localhost/dcaas/base:bookworm"
POOL_OF_ACCOUNT = {"physics": {"phys", "shared"}, "chemistry": {"chem"}}


def ansible_playbook(playbook: str, timeout: float) -> subprocess.CompletedProcess:
    argv = ["ansible-playbook", "-i", INVENTORY, os.path.join(ROOT, "playbooks", playbook)]
    return subprocess.run(
        argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def head(*argv: str, user: str | None = None, check: bool = True) -> str:
    if user:
        # As the user logs in: resolved through SSSD -> LDAP, in their home.
        argv = ("runuser", "-u", user, "--", "bash", "-c", f'cd /home/{user} && exec "$@"', "bash", *argv)
    return podman("exec", HEAD, *argv, check=check)


def workers() -> dict[str, dict[str, str]]:
    """This cluster's cloud workers: name -> labels (resource, tenant, zone, network)."""
    out = podman(
        "ps",
        "--all",
        "--format",
        "json",
        "--filter",
        f"label=dcaas.cluster={CLUSTER}",
        "--filter",
        "label=dcaas.role=worker",
    )
    return {c["Names"][0]: c.get("Labels") or {} for c in json.loads(out or "[]")}


def show(kind: str, name: str) -> dict[str, str]:
    out = head("scontrol", "-o", "show", kind, name, check=False)
    return dict(f.split("=", 1) for f in out.split() if "=" in f)


def engine_events(kind: str) -> list[dict]:
    out = head("journalctl", "-u", "dcaas-engine", "-o", "cat", "--no-pager", check=False)
    events = []
    for line in out.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == kind:
                events.append(event)
    return events


@pytest.fixture(scope="module")
def advanced_cluster():
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode != 0:
        pytest.skip(f"{BASE_IMAGE} is missing: run make images")
    t0 = time.monotonic()
    try:
        deploy = ansible_playbook("advanced.yml", timeout=1500)
        assert deploy.returncode == 0, f"advanced.yml failed:\n{deploy.stdout[-8000:]}\n{deploy.stderr[-2000:]}"
        print(f"\n[adv] advanced.yml deployed in {time.monotonic() - t0:.0f} s", flush=True)
        yield
    finally:
        gone = ansible_playbook("destroy.yml", timeout=600)
        assert gone.returncode == 0, f"destroy.yml failed:\n{gone.stdout[-4000:]}"
        left = podman("ps", "--all", "--quiet", "--filter", f"label=dcaas.cluster={CLUSTER}").split()
        assert not left, f"containers left behind: {left}"


def test_tenant_pools_first_overflow_to_shared_then_scale_to_zero(advanced_cluster):
    assert not workers(), "the cluster starts without cloud workers"
    static_before = podman("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", STATIC).strip()
    static_slurmd = show("node", STATIC).get("SlurmdStartTime")
    assert show("node", STATIC).get("State", "").startswith("IDLE")
    launches_before = len(engine_events("launch"))

    # Three whole-node physics jobs (the physics quota allows one node) and
    # one chemistry job that only the chem pool's feature satisfies: Slurm
    # accepts -C chemsw only thanks to the head's FUTURE placeholder.
    t0 = time.monotonic()
    jobs = {}
    for _job in range(3):
        jid = head(
            "sbatch", "--parsable", "-A", "physics", "-p", "physics", "-c", "2", "--wrap", "sleep 15", user="alice"
        )
        jobs[jid.strip()] = "physics"
    jid = head(
        "sbatch",
        "--parsable",
        "-A",
        "chemistry",
        "-p",
        "chemistry",
        "-c",
        "2",
        "-C",
        "chemsw",
        "--wrap",
        "sleep 15",
        user="bob",
    )
    jobs[jid.strip()] = "chemistry"
    # Tenants' partitions are closed to other tenants' users.
    refused = subprocess.run(
        ["podman", "exec", HEAD, "runuser", "-u", "bob", "--", "sbatch", "-p", "physics", "--wrap", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0 and "not permitted" in refused.stderr

    seen: dict[str, dict[str, str]] = {}
    ran_on: dict[str, str] = {}
    deadline = t0 + 300
    while time.monotonic() < deadline:
        seen.update(workers())
        states = {}
        for jid in jobs:
            info = show("job", jid)
            states[jid] = info.get("JobState", "GONE")
            if info.get("NodeList") not in (None, "(null)", ""):
                ran_on[jid] = info["NodeList"]
        bad = {j: s for j, s in states.items() if s in FAILED_STATES}
        assert not bad, f"jobs ended badly: {bad}"
        if all(s == "COMPLETED" for s in states.values()):
            break
        time.sleep(2)
    else:
        pytest.fail(f"jobs not done in time: {states}")
    done = time.monotonic() - t0

    # The engine's decisions: each tenant's own pool first, only the
    # physics overflow (3 jobs - quota 1) on the shared pool, in one pass.
    launches = engine_events("launch")[launches_before:]
    assert sorted(e["resource"] for e in launches) == ["chem", "phys", "shared", "shared"], launches
    order = [e["resource"] for e in launches]
    assert order.index("phys") < order.index("shared"), f"the physics pool is tried first: {order}"
    assert sorted(labels["dcaas.resource"] for labels in seen.values()) == ["chem", "phys", "shared", "shared"]
    zones = {
        labels["dcaas.resource"]: (labels.get("dcaas.tenant"), labels.get("dcaas.zone")) for labels in seen.values()
    }
    assert zones == {"phys": ("physics", "az1"), "chem": ("chemistry", "az2"), "shared": ("shared", "az2")}

    # Slurm's placement: jobs only on their tenant's pool or the shared one.
    pool = {name: labels["dcaas.resource"] for name, labels in seen.items()}
    used = {jid: pool.get(node) for jid, node in ran_on.items()}
    for jid, account in jobs.items():
        assert used.get(jid) in POOL_OF_ACCOUNT[account], (jid, account, ran_on)
    physics_pools = [used[j] for j, a in jobs.items() if a == "physics"]
    assert "phys" in physics_pools and "shared" in physics_pools, used

    # Back to zero cloud workers; the static worker never touched.
    while time.monotonic() < deadline + 120 and workers():
        time.sleep(3)
    assert not workers(), f"workers left: {sorted(workers())}"
    down = time.monotonic() - t0
    nodes = head("sinfo", "--noheader", "--Node", "--format", "%N").split()
    assert sorted(set(nodes)) == [STATIC], nodes
    assert podman("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", STATIC).strip() == static_before
    static_after = show("node", STATIC)
    assert static_after.get("State", "").startswith("IDLE") and static_after.get("SlurmdStartTime") == static_slurmd
    assert not any(STATIC in json.dumps(e) for e in engine_events("drain") + engine_events("delete"))
    print(f"\n[adv] jobs done {done:.0f} s, zero workers {down:.0f} s after submit", flush=True)
