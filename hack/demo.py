"""`make demo`: the Basic architecture on the local cloud, as a cluster user sees it.

Deploys playbooks/basic.yml (unless --no-deploy), submits a realistic mix of
jobs as the LDAP user alice on the head node, shows a live view while the
engine starts workers, the jobs run and the workers go away, and ends with
a summary of timings. Everything it runs is real: slurmctld and slurmd,
slapd and SSSD, the engine as a systemd service on the head node, podman.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
HEAD = os.environ.get("DCAAS_HEAD", "demo-head")
CLUSTER = os.environ.get("DCAAS_CLUSTER", "demo")
USER = "alice"
# Node states in which a worker has registered and can take jobs.
READY_STATES = ("idle", "mixed", "allocated", "completing")
# The targets issue 3 sets for the Basic architecture on the local cloud.
TARGETS = {"deploy (basic.yml)": 180, "first job started after its submit": 5}

JOBS = [
    # (label, sbatch arguments)
    ("1 core", ["-n1", "--wrap", "sleep 8; echo single on $(hostname)"]),
    ("1 core", ["-n1", "--wrap", "sleep 8; echo single on $(hostname)"]),
    ("1 core", ["-n1", "--wrap", "sleep 10; echo single on $(hostname)"]),
    ("2 cores", ["-n1", "-c2", "--wrap", "sleep 12; echo multicore on $(hostname)"]),
    ("2 nodes, shared /home", ["-N2", "-n2", "--wrap", "srun bash -c 'hostname >> $HOME/mpi-$SLURM_JOB_ID.out'"]),
]


def sh(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, text=True, capture_output=True, check=check, **kw)


def head(argv: list[str], user: str | None = None, check: bool = True) -> str:
    if user:
        # As the user logs in: resolved through NSS (SSSD -> LDAP), in their home.
        login = 'cd "$HOME" && exec "$@"'
        argv = ["runuser", "-u", user, "--", "env", f"HOME=/home/{user}", "bash", "-c", login, "bash", *argv]
    return sh(["podman", "exec", HEAD, *argv], check=check).stdout


def workers() -> list[str]:
    out = sh(
        [
            "podman",
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            f"label=dcaas.cluster={CLUSTER}",
            "--filter",
            "label=dcaas.role=worker",
        ]
    ).stdout
    return sorted(out.split())


def snapshot(ids: list[str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Jobs (Slurm's own submit/start/end times) and nodes, in one call to the head."""
    script = (
        f"squeue --noheader --states=all --jobs={','.join(ids)} --format='%i|%T|%V|%S|%e' 2>/dev/null; "
        "echo ---; sinfo --noheader --Node --format='%N %T'"
    )
    out = head(["bash", "-c", script], check=False)
    jobs_text, _sep, nodes_text = out.partition("---")
    jobs = {}
    for line in jobs_text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 5:
            jobs[parts[0]] = dict(zip(("state", "submit", "start", "end"), parts[1:]))
    return jobs, [n for n in nodes_text.splitlines() if n.strip()]


def slurm_time(text: str) -> float | None:
    """Slurm's ISO timestamp (head's local time, one-second resolution) as epoch seconds."""
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None  # "N/A", "Unknown": not started or not ended yet


def view(t0: float, ids: list[str], labels: dict[str, str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    jobs, nodes = snapshot(ids)
    print(f"\n--- t+{time.monotonic() - t0:5.1f}s ---  workers (containers): {len(workers())}")
    for line in nodes:
        print(f"  node {line}")
    for jid in ids:
        print(f"  job {jid:>4} {labels[jid]:<24} {jobs.get(jid, {}).get('state', 'GONE')}")
    return jobs, nodes


def job_timings(jobs: dict[str, dict[str, str]]) -> dict[str, float]:
    """From Slurm's records: how long each job waited, and the whole batch took."""
    waits, ends, submits = [], [], []
    for rec in jobs.values():
        submit, start, end = (slurm_time(rec[k]) for k in ("submit", "start", "end"))
        if submit is None or start is None:
            continue
        submits.append(submit)
        waits.append(start - submit)
        if end is not None:
            ends.append(end)
    out = {}
    if waits:
        out["first job started after its submit"] = min(waits)
        out["longest wait of a job"] = max(waits)
    if ends and submits:
        out["all jobs done after first submit"] = max(ends) - min(submits)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-deploy", action="store_true", help="use the cluster basic.yml already deployed")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument(
        "--cloud-nodes",
        action="store_true",
        help="deploy with wlm.nodes: cloud (Slurm knows every node while it is off; docs/engine-config.md)",
    )
    args = parser.parse_args()

    timings: dict[str, float] = {}
    if not args.no_deploy:
        print("== deploying the Basic architecture (playbooks/basic.yml)", flush=True)
        t = time.monotonic()
        mode = ["-e", "dcaas_wlm_nodes=cloud"] if args.cloud_nodes else []
        proc = subprocess.run(["ansible-playbook", "playbooks/basic.yml", *mode], cwd=ROOT, check=False)
        if proc.returncode != 0:
            print("deploy failed; see the output above", file=sys.stderr)
            return proc.returncode
        timings["deploy (basic.yml)"] = time.monotonic() - t

    print(f"\n== {USER} is an LDAP user, resolved on the head node through SSSD:")
    print("   " + head(["id", USER]).strip())
    print(f"== submitting {len(JOBS)} jobs as {USER}; no worker exists yet: {workers() or 'none'}")
    t0 = time.monotonic()
    ids, labels = [], {}
    for label, argv in JOBS:
        jid = head(["sbatch", "--parsable", *argv], user=USER).strip().split(";")[0]
        ids.append(jid)
        labels[jid] = label

    deadline = t0 + args.timeout
    final: dict[str, dict[str, str]] = {}
    while time.monotonic() < deadline:
        jobs, nodes = view(t0, ids, labels)
        ready = "first worker ready (in sinfo)"
        if ready not in timings and any(n.split()[-1] in READY_STATES for n in nodes):
            timings[ready] = time.monotonic() - t0
        states = {j: jobs.get(j, {}).get("state", "GONE") for j in ids}
        bad = {j: s for j, s in states.items() if s in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "GONE")}
        if bad:
            print(f"jobs ended badly: {bad}", file=sys.stderr)
            return 1
        if all(s == "COMPLETED" for s in states.values()):
            final = jobs
            break
        time.sleep(1)
    else:
        print("timed out waiting for the jobs", file=sys.stderr)
        return 1
    timings.update(job_timings(final))

    print("\n== all jobs COMPLETED; the 2-node job wrote to the shared /home from:")
    print("   " + " ".join(head(["bash", "-c", f"cat /home/{USER}/mpi-*.out"]).split()))
    print("== waiting for the engine to remove idle workers (dynamic: drain and delete; cloud nodes: power down)")
    while time.monotonic() < deadline:
        left = workers()
        print(f"  t+{time.monotonic() - t0:5.1f}s workers: {' '.join(left) or 'none'}", flush=True)
        if not left:
            timings["back to zero workers after submit"] = time.monotonic() - t0
            break
        time.sleep(5)
    else:
        print("timed out waiting for workers to go", file=sys.stderr)
        return 1

    print("\n== engine status on the head node (dcaasd status):")
    print(head(["dcaasd", "status"], check=False))
    print("== summary (job times from Slurm's submit/start/end records, one-second resolution)")
    for what, secs in timings.items():
        target = TARGETS.get(what)
        verdict = f"   target <= {target} s: {'met' if secs <= target else 'MISSED'}" if target else ""
        print(f"  {what:<40} {secs:6.1f} s{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
