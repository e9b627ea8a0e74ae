"""Crash consistency: the engine SIGKILLed at random points of its passes, against the real Nova.

Each pass runs in its own process (tests/fixtures/engine_pass.py) with the
real ``Engine`` and ``openstack`` provider, through the fault proxy (which
lets what a killed pass sent land before anything is counted), and a fake
WLM whose queue is a file the test shares with it. Between passes the test
plays users and slurmctld: it submits and finishes jobs and starts pending
ones on free nodes. After the last kill a restarted engine must settle
within 3 passes, and once every job has ended and the timeouts have passed
it must delete every server: see ``crash_campaign`` in
tests/fixtures/campaign.py for what is counted.

CI runs a few trials; ``DCAAS_CRASH_TRIALS=200`` runs more, and
``DCAAS_CRASH_SEED`` replays one (the seed is printed, and named on failure).
Skipped without .venv-nova (run hack/nova/setup.sh).
"""

from __future__ import annotations

import os
import secrets

from ansible_collections.dcaas.cluster.tests.fixtures.campaign import crash_campaign

pytest_plugins = ["ansible_collections.dcaas.cluster.tests.fixtures.nova"]

TRIALS = int(os.environ.get("DCAAS_CRASH_TRIALS", "10"))


def test_sigkilled_engine_never_deletes_busy_nodes_orphans_or_over_launches(
    nova_cloud, nova_admin, nova_cluster, tmp_path
):
    seed = int(os.environ.get("DCAAS_CRASH_SEED") or secrets.randbelow(2**32))
    counts = crash_campaign(nova_cloud, nova_admin, nova_cluster, str(tmp_path), TRIALS, seed)
    print(f"\ncrash campaign (DCAAS_CRASH_SEED={seed}): {counts.line()}")
    assert counts.bad == 0, "\n".join([f"DCAAS_CRASH_SEED={seed}: {counts.line()}", *counts.notes])
    assert counts.trials == TRIALS and counts.kills > 0
