"""Benchmarks of the scaling policy: ``make bench`` runs both.

``--decide``: the decision time of ``policy.decide`` on 100,000 pending
jobs and 2,000 nodes (wall-clock and CPU time per call; on a busy 2-core
machine the wall time also counts waiting for a core, so read the CPU
time there; target: under 0.5 s).

Otherwise, the policy on real workloads: every SWF trace in the traces
directory is simulated under each policy (static, powersave, legacy,
dcaas, dcaas-cloud) and one table of cost and wait is printed, with the
targets of the issue checked. By default only the first days of each trace
(--days), whole traces with --full.

Prints numbers (wall and CPU time); asserts nothing about time. See
docs/simulation.md.

    python tools/bench.py --decide               # decide() time
    python tools/bench.py                        # 14-day slices
    python tools/bench.py --full --workers 2 --write docs/sim --plots
    python tools/bench.py --trace Atlas --policies dcaas --full --set timers.idle_timeout=900
"""

from __future__ import annotations

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_paths() -> None:
    """Make ``tools`` and ``ansible_collections.dcaas.cluster`` importable."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    try:
        import ansible_collections.dcaas.cluster.plugins.module_utils.policy  # noqa: F401
    except ImportError:
        built = os.path.join(REPO, "build", "collections")
        if not os.path.isdir(os.path.join(built, "ansible_collections", "dcaas", "cluster")):
            sys.exit(
                f"cannot import ansible_collections.dcaas.cluster: put a collections directory on PYTHONPATH "
                f"or link {built}/ansible_collections/dcaas/cluster to {REPO}"
            )
        sys.path.insert(0, built)


# The world the decision time is measured on: four resources (a tenant's
# own pool, a GPU partition), a mix of job shapes and node states.
_DECIDE_RESOURCES = [
    {"name": "small", "flavor": "s", "image": "w", "cores": 8, "memory_mb": 32000, "max": 1500},
    {"name": "big", "flavor": "b", "image": "w", "cores": 32, "memory_mb": 128000, "max": 500},
    {
        "name": "chem",
        "flavor": "s",
        "image": "w",
        "cores": 16,
        "memory_mb": 64000,
        "max": 300,
        "accounts": ["chem"],
        "priority": 10,
    },
    {
        "name": "gpu",
        "flavor": "g",
        "image": "w",
        "cores": 16,
        "memory_mb": 64000,
        "max": 100,
        "partitions": ["gpu"],
        "features": ["gpu"],
    },
]


def _decide_world(n_jobs: int, n_nodes: int, seed: int):
    """(config, observed) of the decide() benchmark, the same for a seed."""
    import random

    from ansible_collections.dcaas.cluster.plugins.module_utils import config as cfgmod
    from ansible_collections.dcaas.cluster.plugins.module_utils import model as m

    rng = random.Random(seed)
    cfg = cfgmod.parse({"cluster": "bench", "resources": _DECIDE_RESOURCES, "limits": {"max_launches_per_cycle": 100}})
    jobs = tuple(
        m.Job(
            id=str(i),
            state="pending",
            cores=rng.choice([1, 1, 2, 4, 8, 16, 48]),
            memory_mb=rng.choice([0, 1000, 4000, 16000]),
            nodes=rng.choice([1, 1, 1, 2, 4, 16]),
            account=rng.choice([None, "chem", "phys"]),
            partitions=rng.choice([("batch",), ("batch",), ("gpu",)]),
            eligible=rng.random() > 0.05,
        )
        for i in range(n_jobs)
    )
    names = ["small"] * 1300 + ["big"] * 400 + ["chem"] * 250 + ["gpu"] * 50
    states = [m.NodeState.BUSY] * 6 + [m.NodeState.IDLE, m.NodeState.STARTING, m.NodeState.DRAINING]
    nodes = []
    for i in range(n_nodes):
        res = cfg.resource(names[i % len(names)])
        state = rng.choice(states)
        busy = state is m.NodeState.BUSY
        nodes.append(
            m.Node(
                f"n{i}",
                res.name,
                state,
                f"i{i}",
                rng.random() * 1000,
                res.cores,
                res.memory_mb,
                cores_alloc=res.cores if busy else 0,
                jobs=("x",) if busy else (),
                in_wlm=True,
                drained_by_us=state is m.NodeState.DRAINING,
            )
        )
    return cfg, m.Observed(jobs=jobs, nodes=tuple(nodes))


def _bench_decide(n_jobs: int, n_nodes: int, repeat: int, seed: int) -> None:
    import statistics

    from ansible_collections.dcaas.cluster.plugins.module_utils.model import Timers
    from ansible_collections.dcaas.cluster.plugins.module_utils.policy import decide

    cfg, observed = _decide_world(n_jobs, n_nodes, seed)
    wall, cpu = [], []
    plan = None
    for _run in range(repeat):
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        plan = decide(observed, cfg, 1_000_000.0, Timers())
        wall.append(time.perf_counter() - t_wall)
        cpu.append(time.process_time() - t_cpu)
    launches = sum(x.count for x in plan.launches)
    print(f"policy.decide: {n_jobs} pending jobs, {n_nodes} nodes, {len(cfg.resources)} resources")
    print(f"  wall  median {statistics.median(wall):.3f} s  max {max(wall):.3f} s")
    print(f"  cpu   median {statistics.median(cpu):.3f} s  max {max(cpu):.3f} s   (target < 0.5 s)")
    print(f"  plan: launch {launches}, {len(plan.actions)} node actions, {len(plan.unfit)} unfit jobs")


def _overrides(pairs: list[str]) -> dict:
    """--set timers.idle_timeout=900 -> {"timers": {"idle_timeout": 900}}"""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or "." not in key:
            sys.exit(f"--set {pair!r}: expected SECTION.KEY=VALUE, e.g. timers.idle_timeout=900")
        section, field = key.split(".", 1)
        out.setdefault(section, {})[field] = int(value) if value.lstrip("-").isdigit() else value
    return out


def _simulate(job: tuple) -> list:
    path, args, overrides = job
    from tools.sim import experiment
    from tools.sim.core import CloudModel

    workload = experiment.load(path, None if args.full else args.days, None if args.full else args.max_jobs)
    cloud = CloudModel(args.boot_delay, args.boot_jitter, args.failure_rate)
    results = []
    for policy in args.policies:
        r = experiment.run(workload, policy, cloud, args.seed, args.every_cycle, overrides or None)
        print(
            f"  [{r.trace} {policy}: {r.jobs} jobs simulated in {r.wall_s:.1f} s, CPU {r.cpu_s:.1f} s]",
            file=sys.stderr,
            flush=True,
        )
        results.append(r)
    return results


def main(argv: list[str] | None = None) -> int:
    _import_paths()
    from tools.sim import experiment, report

    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n", maxsplit=1)[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--decide", action="store_true", help="time policy.decide instead of simulating traces")
    p.add_argument("--jobs", type=int, default=100_000, help="--decide: pending jobs")
    p.add_argument("--nodes", type=int, default=2_000, help="--decide: nodes")
    p.add_argument("--repeat", type=int, default=5, help="--decide: calls timed")
    p.add_argument("--traces-dir", default=experiment.DEFAULT_TRACES)
    p.add_argument("--trace", action="append", default=[], help="only traces whose name contains this")
    p.add_argument("--policies", default=",".join(experiment.ORDER), help="comma-separated, in table order")
    p.add_argument("--full", action="store_true", help="whole traces instead of the first --days")
    p.add_argument("--days", type=float, default=14.0, help="slice: first days of each trace (default 14)")
    p.add_argument("--max-jobs", type=int, default=None, help="slice: at most this many jobs per trace")
    p.add_argument("--seed", type=int, default=None, help="default 0 (1 with --decide)")
    p.add_argument("--boot-delay", type=float, default=60.0, help="seconds from launch to a usable node")
    p.add_argument("--boot-jitter", type=float, default=20.0, help="uniform +- seconds around --boot-delay")
    p.add_argument("--failure-rate", type=float, default=0.02, help="share of launches that fail to boot")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override the dcaas engine config, e.g. timers.idle_timeout=900",
    )
    p.add_argument(
        "--every-cycle",
        action="store_true",
        help="call the policies every cycle, even when nothing changed (slow; same results)",
    )
    p.add_argument("--workers", type=int, default=1, help="traces simulated in parallel processes")
    p.add_argument("--write", metavar="DIR", help="write results-<label>.csv/.json there")
    p.add_argument("--label", help="name of the written files (default: full, 14d, ...)")
    p.add_argument("--plots", action="store_true", help="with --write: also PNG plots (matplotlib)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = p.parse_args(argv)
    if args.decide:
        _bench_decide(args.jobs, args.nodes, args.repeat, 1 if args.seed is None else args.seed)
        return 0
    if args.seed is None:
        args.seed = 0
    args.policies = [x for x in args.policies.split(",") if x]
    for name in args.policies:
        if name not in experiment.ORDER:
            p.error(f"unknown policy {name!r}; choose from {', '.join(experiment.ORDER)}")

    paths = experiment.find_traces(args.traces_dir)
    if args.trace:
        paths = [x for x in paths if any(s.lower() in os.path.basename(x).lower() for s in args.trace)]
    overrides = _overrides(args.set)
    jobs = [(path, args, overrides) for path in paths]
    t = time.perf_counter()
    if args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers) as pool:
            per_trace = list(pool.map(_simulate, jobs))
    else:
        per_trace = [_simulate(j) for j in jobs]
    results = [r for runs in per_trace for r in runs]
    label = args.label or ("full" if args.full else (f"{args.max_jobs}jobs" if args.max_jobs else f"{args.days:g}d"))
    print(
        f"simulation ({label}; node = MaxProcs/MaxNodes cores; boot {args.boot_delay:g}+-{args.boot_jitter:g} s, "
        f"{args.failure_rate:.0%} launch failures; seed {args.seed}; {time.perf_counter() - t:.1f} s)"
    )
    print(report.markdown(results) if args.markdown else report.table(results))
    marks = report.checks(results)
    if marks:
        print("\ntargets:")
        for c in marks:
            print(f"  {'MET ' if c.met else 'MISS'}  {c.trace:26s} {c.policy:12s} {c.target:42s} {c.detail}")
    if args.write:
        meta = {
            "slice": label,
            "seed": args.seed,
            "boot_delay_s": args.boot_delay,
            "boot_jitter_s": args.boot_jitter,
            "failure_rate": args.failure_rate,
            "dcaas_overrides": overrides,
            "every_cycle": args.every_cycle,
        }
        written = report.write(results, args.write, label, meta)
        if args.plots:
            written.append(report.plot_cost_wait(results, os.path.join(args.write, f"cost_vs_wait-{label}.png")))
            for runs in per_trace:
                name = runs[0].trace.split("-")[0] + "-" + runs[0].trace.split("-")[1]
                written.append(report.plot_nodes(runs, os.path.join(args.write, f"nodes-{name}-{label}.png")))
        print("\nwrote " + ", ".join(os.path.relpath(x) for x in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
