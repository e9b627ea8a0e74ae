"""Decision time of the scaling policy: 100,000 pending jobs on 2,000 nodes.

Prints wall-clock and CPU time (time.process_time) per decide() call; on a
busy 2-core machine the wall time also counts waiting for a core, so read
the CPU time there. Target: under 0.5 s. Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, os.path.join(ROOT, "build", "collections"))

from ansible_collections.dcaas.cluster.plugins.module_utils import config as cfgmod  # noqa: E402
from ansible_collections.dcaas.cluster.plugins.module_utils import model as m  # noqa: E402
from ansible_collections.dcaas.cluster.plugins.module_utils.policy import decide  # noqa: E402

NOW = 1_000_000.0


def world(n_jobs: int, n_nodes: int, seed: int) -> tuple[cfgmod.Config, m.Observed]:
    rng = random.Random(seed)
    cfg = cfgmod.parse(
        {
            "cluster": "bench",
            "resources": [
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
            ],
            "limits": {"max_launches_per_cycle": 100},
        }
    )
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cfg, observed = world(args.jobs, args.nodes, args.seed)
    wall, cpu = [], []
    plan = None
    for _run in range(args.repeat):
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        plan = decide(observed, cfg, NOW, m.Timers())
        wall.append(time.perf_counter() - t_wall)
        cpu.append(time.process_time() - t_cpu)
    launches = sum(x.count for x in plan.launches)
    print(f"policy.decide: {args.jobs} pending jobs, {args.nodes} nodes, {len(cfg.resources)} resources")
    print(f"  wall  median {statistics.median(wall):.3f} s  max {max(wall):.3f} s")
    print(f"  cpu   median {statistics.median(cpu):.3f} s  max {max(cpu):.3f} s   (target < 0.5 s)")
    print(f"  plan: launch {launches}, {len(plan.actions)} node actions, {len(plan.unfit)} unfit jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
