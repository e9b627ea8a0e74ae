"""A whole pass, fed partial and malformed Slurm answers: never a drain or delete of a node with a job.

The engine here is the real one with the real Slurm adapter and the real
policy; only what Slurm prints is generated (from the shapes of the real
22.05 captures in tests/unit/fixtures/slurm) and the cloud is the in-memory
fake of test_engine.py. Each example builds a true cluster (workers that
earlier passes saw join, some running jobs, the rest idle past their idle
timeout or drained, as the engine would delete them), prints it as squeue/sinfo would, breaks the printout
the way a partial or changed answer is broken, and runs one pass. Whatever
the engine makes of it, no node that runs a job in the true cluster may be
drained, deleted in the cloud, or forgotten by Slurm.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine import CONFIG, NOW, FakeCloud

from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import Engine
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Controls,
    Instance,
    InstanceStatus,
    Timers,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.naming import DRAIN_REASON_PREFIX
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.slurm import SlurmManager

EXAMPLES = int(os.environ.get("DCAAS_FUZZ_EXAMPLES", "150"))
FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "fixtures", "slurm", "busy")

with open(os.path.join(FIXTURES, "sinfo-json.json"), encoding="utf-8") as fh:
    SINFO = json.load(fh)
with open(os.path.join(FIXTURES, "squeue-json.json"), encoding="utf-8") as fh:
    SQUEUE = json.load(fh)
NODE_TEMPLATE = SINFO["nodes"][0]
JOB_TEMPLATE = next(j for j in SQUEUE["jobs"] if j["job_state"] == "RUNNING")


class SlurmPrintout(Runner):
    """What squeue and sinfo print for one generated cluster; records every change asked of Slurm."""

    def __init__(self, squeue: str, sinfo: str):
        super().__init__()
        self.squeue, self.sinfo = squeue, sinfo
        self.changes: list[list[str]] = []

    def run(self, argv: Sequence[str], check: bool = True, input_text: str | None = None) -> str:
        argv = list(argv)
        if argv[:2] == ["squeue", "--json"]:
            return self.squeue
        if argv[:2] == ["sinfo", "--json"]:
            return self.sinfo
        if argv[0] == "squeue" or "squeue" in argv:
            return ""
        self.changes.append(argv)
        return ""


def node_record(name: str, state: str, alloc: int) -> dict:
    rec = copy.deepcopy(NODE_TEMPLATE)
    rec.update(name=name, state=state, alloc_cpus=alloc, reason="", features="dcaas,dcaas_a")
    if state == "idle+drain":
        rec.update(state="idle", state_flags=["DRAIN", "DYNAMIC_NORM"], reason=f"{DRAIN_REASON_PREFIX} idle")
    return rec


def job_record(job_id: int, node: str) -> dict:
    rec = copy.deepcopy(JOB_TEMPLATE)
    rec.update(job_id=job_id, nodes=node, node_count=1, cpus=1, array_job_id=0, array_task_id=None)
    return rec


# How an answer gets broken: each takes the parsed printout and returns the text Slurm "printed".
def _drop_key(data, key):
    data.pop(key, None)
    return json.dumps(data)


def _set_key(value):
    def breaker(data, key):
        data[key] = value
        return json.dumps(data)

    return breaker


def _cut_list(data, key):
    data[key] = data[key][: len(data[key]) // 2]
    return json.dumps(data)


def _null_field(field):
    def breaker(data, key):
        for rec in data[key][:1]:
            rec[field] = None
        return json.dumps(data)

    return breaker


def _wrong_type(field):
    def breaker(data, key):
        for rec in data[key][:1]:
            rec[field] = {"unexpected": [1, 2]}
        return json.dumps(data)

    return breaker


def _truncate_text(data, _key):
    text = json.dumps(data)
    return text[: len(text) // 2]


BREAKERS = {
    "missing list": _drop_key,
    "list null": _set_key(None),
    "list is a string": _set_key("nodes"),
    "list is an object": _set_key({}),
    "list cut short": _cut_list,
    "name null": _null_field("name"),
    "state null": _null_field("state"),
    "alloc_cpus null": _null_field("alloc_cpus"),
    "job nodes null": _null_field("nodes"),
    "job state odd": _wrong_type("job_state"),
    "number odd": _wrong_type("alloc_cpus"),
    "text cut": _truncate_text,
    "intact": lambda data, _key: json.dumps(data),
}


@st.composite
def clusters(draw):
    """(names, busy names, what breaks squeue, what breaks sinfo)."""
    count = draw(st.integers(1, 6))
    names = [f"t-a-{i}" for i in range(count)]
    busy = set(draw(st.lists(st.sampled_from(names), unique=True)))
    drained = {n for n in names if n not in busy and draw(st.booleans())}
    broken = st.sampled_from(sorted(BREAKERS))
    return names, busy, drained, draw(broken), draw(broken)


@settings(max_examples=EXAMPLES, deadline=None)
@given(clusters())
def test_no_pass_drains_or_deletes_a_node_that_runs_a_job(tmp_path_factory, cluster):
    names, busy, drained, break_squeue, break_sinfo = cluster
    jobs = {"meta": SQUEUE["meta"], "errors": [], "jobs": [job_record(100 + i, n) for i, n in enumerate(sorted(busy))]}
    nodes = {
        "meta": SINFO["meta"],
        "errors": [],
        "nodes": [
            node_record(
                n, "allocated" if n in busy else "idle+drain" if n in drained else "idle", 1 if n in busy else 0
            )
            for n in names
        ],
    }
    runner = SlurmPrintout(
        BREAKERS[break_squeue](copy.deepcopy(jobs), "jobs"), BREAKERS[break_sinfo](copy.deepcopy(nodes), "nodes")
    )
    state = tmp_path_factory.mktemp("s") / "state.json"
    cfg = parse({**CONFIG, "resources": [CONFIG["resources"][0]], "state_file": str(state)})
    cloud = FakeCloud()
    for name in names:
        cloud.instances[name] = Instance(f"id-{name}", name, "a", InstanceStatus.ACTIVE, 0.0)
    engine = Engine(cfg, SlurmManager(runner, cluster="t"), cloud, StateStore(cfg.state_file), clock=lambda: NOW)
    # Earlier passes saw every worker join.
    engine.store.save(Timers(idle_since=dict.fromkeys(names, 0.0), joined=dict.fromkeys(names, 0.0)), Controls())

    try:
        engine.run_once()
    except Exception as exc:
        # The only way a pass may end early: the adapter refused the answer.
        assert type(exc).__name__ == "CommandError", (break_squeue, break_sinfo, exc)

    touched = {arg.split("=", 1)[1] for argv in runner.changes for arg in argv if arg.startswith("NodeName=")}
    drained_or_removed = {
        arg.split("=", 1)[1]
        for argv in runner.changes
        if "State=DRAIN" in argv or argv[:2] == ["scontrol", "delete"]
        for arg in argv
        if arg.startswith("NodeName=")
    }
    assert not drained_or_removed & busy, (break_squeue, break_sinfo, runner.changes)
    assert not set(cloud.deleted) & busy, (break_squeue, break_sinfo, cloud.deleted)
    assert touched <= set(names)
