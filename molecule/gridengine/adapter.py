# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's Grid Engine adapter against the scenario's real qmaster.

verify.yml uses it as the engine would: ``nodes`` prints what the adapter
reads from qhost (JSON), ``admit`` adds a worker to its resource's host
group (GridEngineManager.admit, after the head role made the objects), and
``seed`` writes the worker's NoCloud seed from the adapter's join_config and
the engine's user-data renderer. Commands run on the head through
``podman exec``, as the engine's runner would run them there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Resource
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.userdata import render
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.gridengine import GridEngineManager


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["nodes", "admit", "seed"])
    parser.add_argument("--head", required=True, help="the head's container")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--options", required=True, help="the engine's wlm.options, JSON")
    parser.add_argument("--node", help="admit, seed: the worker's name")
    parser.add_argument("--resource", default="baked")
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--out", help="seed: directory for meta-data and user-data")
    args = parser.parse_args()

    runner = Runner(prefix=("podman", "exec", args.head))
    manager = GridEngineManager(runner, json.loads(args.options), cluster=args.cluster)
    resource = Resource(name=args.resource, flavor="local", image="baked", cores=args.cores, memory_mb=1024)
    if args.action == "nodes":
        print(json.dumps([asdict(node) for node in manager.nodes()], default=list))
    elif args.action == "admit":
        manager.admit(resource, args.node, "")
    else:
        os.makedirs(args.out, mode=0o700, exist_ok=True)
        for name, text in (
            ("user-data", render(manager.join_config(resource, args.node))),
            ("meta-data", f"instance-id: {args.node}\nlocal-hostname: {args.node}\n"),
        ):
            with open(os.path.join(args.out, name), "w", encoding="utf-8") as handle:
                handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
