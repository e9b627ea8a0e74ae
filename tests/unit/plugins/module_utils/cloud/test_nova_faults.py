"""The engine under cloud faults: a real Nova behind a fault-injecting proxy.

The real ``Engine``, policy and ``openstack`` provider talk to the Nova of
the ``nova_cloud`` fixture through ``FaultProxy`` (tests/fixtures/
fault_proxy.py); the fake WLM (``QueueWlm``) reads Nova directly, as
slurmctld would. The engine's clock moves only when a test says so. What is
measured, and why it must stay at zero, is in tests/fixtures/campaign.py.
Skipped without .venv-nova (run hack/nova/setup.sh).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.model import LABEL_RESOURCE
from ansible_collections.dcaas.cluster.tests.fixtures.campaign import (
    INTERVAL,
    TIMERS,
    Harness,
    fault_campaign,
    resource,
)
from ansible_collections.dcaas.cluster.tests.fixtures.fault_proxy import QUOTA, UNAVAILABLE

if TYPE_CHECKING:
    from ansible_collections.dcaas.cluster.tests.fixtures.nova import NovaCloud

pytest_plugins = ["ansible_collections.dcaas.cluster.tests.fixtures.nova"]


@pytest.fixture
def h(nova_cloud: NovaCloud, nova_admin: Any, nova_cluster: str, tmp_path: Any) -> Iterator[Harness]:
    harness = Harness(nova_cloud, nova_admin, nova_cluster, str(tmp_path))
    yield harness
    harness.close()


def posts(h: Harness) -> int:
    return h.proxy.count("POST", "/servers")


def test_no_fault_class_deletes_a_busy_node_orphans_or_over_launches(h):
    """503, refused, hang, reset, a cloud starting mid-pass, a create Nova did but never answered.

    Each fault class in turn, on one cluster where a job runs on a server
    the whole time: the pass under the fault must not harm, let no exception
    out, and the passes after it must give the new job exactly one server.
    """
    counts = fault_campaign(h)
    print(f"\nfault campaign: {counts.line()}")
    assert counts.bad == 0, "\n".join([counts.line(), *counts.notes])
    assert counts.trials == 6 and counts.creates >= 6


def expected_attempts(passes: int, lag: int) -> int:
    """Launch attempts of a resource that always fails, when its back-off doubles up to backoff_max.

    One pass every INTERVAL seconds; a failure is known ``lag`` passes after
    the launch (0: the create call fails; 1: the server goes to ERROR and the
    next pass sees it). No attempt while a launched server is not yet known
    to have failed.
    """
    until, failures, waiting_for = -math.inf, 0, None
    attempts = 0
    for n in range(passes):
        now = n * INTERVAL
        if waiting_for == n:
            failures += 1
            until = now + min(TIMERS["backoff_initial"] * 2 ** (failures - 1), TIMERS["backoff_max"])
            waiting_for = None
            continue  # the pass that sees the failure backs off at once
        if waiting_for is None and now >= until:
            attempts += 1
            if lag:
                waiting_for = n + lag
            else:
                failures += 1
                until = now + min(TIMERS["backoff_initial"] * 2 ** (failures - 1), TIMERS["backoff_max"])
    return attempts


def test_expected_attempts_model():
    # backoff 30, 60, 120, 120 ...: attempts at 0, 30, 90, 210, 330 s.
    assert expected_attempts(12, lag=0) == 5
    # failures seen one pass later: attempts at 0, 60, 150, 300 s.
    assert expected_attempts(12, lag=1) == 4


@pytest.mark.parametrize("cause", ["quota", "novalidhost"])
def test_launch_backoff_doubles_across_passes_up_to_backoff_max(h, cause):
    """A resource whose launches always fail costs one create per back-off step, not one per pass.

    quota: Nova answers the create with 403 (the proxy, in Nova's words);
    novalidhost: Nova accepts it and the server goes to ERROR (every compute
    host disabled), which the next pass sees.
    """
    passes = 12
    engine = h.engine(resource("small", "tenant-a", max=1))
    h.wlm.submit("j1")
    failures = []
    with ExitStack() as undo:
        if cause == "quota":
            h.proxy.inject(QUOTA, "POST", "/servers")
        else:
            undo.enter_context(h.hosts_disabled())
        for _pass in range(passes):
            h.run(engine)
            if cause == "novalidhost":
                h.settle()  # the server Nova accepted has gone to ERROR
            failures.append(h.backoff().get("small", {}).get("failures", 0))
            h.advance(INTERVAL)
    bound = expected_attempts(passes, lag=0 if cause == "quota" else 1)
    print(f"\n{cause}: {posts(h)} creates in {passes} passes (bound {bound}); failures by pass: {failures}")
    assert h.escaped == []
    assert 2 <= posts(h) <= bound, f"{posts(h)} creates in {passes} passes; back-off failures by pass: {failures}"
    assert max(failures) >= 3, f"the back-off never escalated: failures by pass {failures}"


def test_backoff_survives_an_outage_right_after_the_failed_launch(h):
    engine = h.engine(resource("small", "tenant-a"))
    h.run(engine)  # the provider has connected; nothing to do yet
    h.wlm.submit("j1")
    h.proxy.inject(QUOTA, "POST", "/servers", then=h.proxy.stop_listening)
    failed = h.run(engine)

    assert posts(h) == 1
    assert h.escaped == [], "the outage after the failed launch escaped the pass"
    assert failed is not None and any("quota" in e.lower() for e in failed.errors), failed and failed.errors
    assert "small" in h.backoff(), "the back-off of the failed launch was not saved"

    h.proxy.clear()
    h.proxy.start_listening()
    h.advance(TIMERS["backoff_initial"] / 2)
    h.run(engine)
    assert posts(h) == 1, "launched again while it should still back off"


def test_a_delete_the_cloud_refuses_leaves_the_node_known_and_the_next_pass_deletes_it(h):
    """The engine deletes the server first and only then has the WLM forget
    the node (a pass that dies in between leaves a WLM node without a server,
    which the next pass forgets: test_engine.py). Here Nova refuses the
    DELETE: the WLM must still know the node, drained, so that it is neither
    used nor taken for a new one, and the next pass deletes it."""
    engine = h.engine(resource("small", "tenant-a"))
    h.wlm.submit("j1")
    h.run(engine)
    (server,) = h.settle()
    h.wlm.schedule()
    h.run(engine)
    h.wlm.finish_all()
    h.run(engine)  # idle from now
    h.advance(TIMERS["idle_timeout"] + 1)
    drained = h.run(engine)
    assert drained is not None and [a["action"] for a in drained.done] == ["drain"]

    h.proxy.inject(UNAVAILABLE, "DELETE", r"/servers/\{id\}")
    h.advance(INTERVAL)
    crashed = h.run(engine)
    assert crashed is not None and crashed.errors, "the DELETE was not refused"
    assert server.name not in h.wlm.removed and [s.name for s in h.live(h.servers())] == [server.name]

    h.proxy.clear()
    h.advance(INTERVAL)
    after = h.run(engine)
    assert after is not None
    states = {n.name: n.state.value for n in after.observed.nodes}
    assert [a["node"] for a in after.done if a["action"] == "delete"] == [server.name], (
        f"the server the WLM forgot is still alive, seen as {states}; it would stay until boot_timeout="
        f"{TIMERS['boot_timeout']}s"
    )
    assert posts(h) == 1


def test_removing_a_resource_from_the_config_orphans_none_of_its_servers(h):
    """The resource ``physics`` lives in its own project; the new config drops it."""
    physics = resource("physics", "tenant-a", accounts=["physics"])
    shared = resource("shared", "tenant-b")
    h.wlm.submit("p1", account="physics")
    h.wlm.submit("c1", account="chemistry")
    h.run(h.engine(physics, shared))
    found = h.settle()
    (ours,) = [s for s in found if s.metadata[LABEL_RESOURCE] == "physics"]
    h.wlm.finish_all()

    messages: list[str] = []
    try:
        later = h.engine(shared)
    except Exception as exc:  # refusing the change outright is one right answer
        messages.append(str(exc))
    else:
        for _pass in range(4):
            result = h.run(later)
            if result is not None:
                messages += result.errors + result.warnings
            h.advance(TIMERS["idle_timeout"])
        h.settle()
    messages += h.escaped + h.failed
    gone = ours.id not in {s.id for s in h.live(h.servers())}
    refused = any(re.search(r"physics|tenant-a", m) for m in messages)
    assert gone or refused, (
        f"server {ours.name} of the removed resource 'physics' (project tenant-a) is orphaned: still there, "
        f"never deleted, and nothing said so; messages: {messages}"
    )
