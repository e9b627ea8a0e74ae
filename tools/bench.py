"""The scaling policy on real workloads (the simulator half of ``make bench``).

Every SWF trace in the traces directory is simulated under each policy
(static, powersave, legacy, dcaas) and one table of cost and wait is
printed, with the targets of the issue checked. By default only the first
days of each trace (--days), whole traces with --full. The decision time
of ``policy.decide`` is measured by hack/bench_policy.py.

Prints numbers (wall and CPU time); asserts nothing about time. See
docs/simulation.md.

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
    p.add_argument("--traces-dir", default=experiment.DEFAULT_TRACES)
    p.add_argument("--trace", action="append", default=[], help="only traces whose name contains this")
    p.add_argument("--policies", default=",".join(experiment.ORDER), help="comma-separated, in table order")
    p.add_argument("--full", action="store_true", help="whole traces instead of the first --days")
    p.add_argument("--days", type=float, default=14.0, help="slice: first days of each trace (default 14)")
    p.add_argument("--max-jobs", type=int, default=None, help="slice: at most this many jobs per trace")
    p.add_argument("--seed", type=int, default=0)
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
    args.policies = [x for x in args.policies.split(",") if x]
    known = (*experiment.ORDER, *experiment.PROTOTYPES)
    for name in args.policies:
        if name not in known:
            p.error(f"unknown policy {name!r}; choose from {', '.join(known)} (prototypes: tools/sim/prototypes.py)")

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
