# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault and crash campaign against the real Nova: prints what it counted.

    .venv/bin/python hack/campaign.py [--trials N] [--seed S] [--faults a,b]

(the dev venv: openstacksdk and pytest). Starts Nova (hack/nova/serve.py
with .venv-nova, or the venv NOVA_VENV names), runs every
fault class of tests/fixtures/campaign.py (``--faults`` picks some), then
``--trials`` engine passes SIGKILLed at random points, and prints one line
per part and a total:

    faults trials=9 ... busy_deletes=0 orphans=0 over_launch=0 escaped=0 unconverged=0
    crash  trials=50 ...
    total  ...

Exit status 1 when a count that must stay 0 is not (the notes say where).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, os.path.join(ROOT, "build", "collections"))

from ansible_collections.dcaas.cluster.tests.fixtures import campaign, nova  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="crash trials (engine passes, most of them killed)")
    parser.add_argument("--seed", type=int, default=None, help="replay a crash campaign")
    parser.add_argument("--faults", default=",".join(campaign.FAULTS), help="fault classes, comma-separated")
    args = parser.parse_args(argv)
    classes = tuple(c for c in args.faults.split(",") if c)
    unknown = [c for c in classes if c not in campaign.FAULTS]
    if unknown:
        parser.error(f"--faults: unknown {unknown}; known: {', '.join(campaign.FAULTS)}")
    seed = secrets.randbelow(2**32) if args.seed is None else args.seed

    with tempfile.TemporaryDirectory(prefix="dcaas-campaign-") as tmp, nova.start_nova(tmp) as cloud:
        admin = cloud.connect(cloud.admin_cloud)
        total = campaign.Counts()
        parts = []
        try:
            if classes:
                cluster = f"fc-{secrets.token_hex(3)}"
                workdir = os.path.join(tmp, cluster)
                os.makedirs(workdir)
                harness = campaign.Harness(cloud, admin, cluster, workdir)
                try:
                    parts.append(("faults", campaign.fault_campaign(harness, classes)))
                finally:
                    harness.close()
                    nova.delete_servers(admin, cluster)
            if args.trials:
                cluster = f"cc-{secrets.token_hex(3)}"
                workdir = os.path.join(tmp, cluster)
                os.makedirs(workdir)
                try:
                    parts.append(("crash", campaign.crash_campaign(cloud, admin, cluster, workdir, args.trials, seed)))
                finally:
                    nova.delete_servers(admin, cluster)
        finally:
            admin.close()
        for name, counts in parts:
            total.add(counts)
            print(f"{name:6} {counts.line()}")
        print(f"{'total':6} {total.line()}  (crash seed {seed})")
        for note in total.notes:
            print(f"  {note}")
    return 1 if total.bad else 0


if __name__ == "__main__":
    sys.exit(main())
