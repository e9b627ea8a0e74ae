"""Slurm adapter against real Slurm 22.05 output (tests/unit/fixtures/slurm, see its README)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Sequence
from functools import partial

import pytest
import yaml

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Resource, WlmState
from ansible_collections.dcaas.cluster.plugins.module_utils.naming import DRAIN_REASON_PREFIX
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError, Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.userdata import render
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.arrays import array_tasks
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.slurm import (
    SlurmConfigError,
    SlurmManager,
    eligibility,
    node_state,
    parse_constraint,
)

FIXTURES = os.path.join(os.path.dirname(__file__), *[os.pardir] * 3, "fixtures", "slurm")
P = "dcaas-a-fx-"  # the captured cluster's node name prefix


class ReplayRunner(Runner):
    """Answers the adapter's commands with what real Slurm printed for them."""

    def __init__(self, state: str = "busy", extra: Sequence[dict] = ()):
        super().__init__()
        self.state = state
        with open(os.path.join(FIXTURES, "commands.json"), encoding="utf-8") as fh:
            self.recorded = [*extra, *json.load(fh)]
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str], check: bool = True, input_text: str | None = None) -> str:
        argv = list(argv)
        self.calls.append(argv)
        if argv in (["squeue", "--json"], ["sinfo", "--json"]):
            with open(os.path.join(FIXTURES, self.state, f"{argv[0]}-json.json"), encoding="utf-8") as fh:
                return fh.read()
        for rec in self.recorded:
            if rec["argv"] == argv:
                if check and rec["rc"] != 0:
                    raise CommandError(argv, rec["rc"], rec["stdout"], rec["stderr"])
                return rec["stdout"]
        raise AssertionError(f"no recorded output for {argv}")


def manager(state: str = "busy", options: dict | None = None, extra: Sequence[dict] = ()) -> SlurmManager:
    return SlurmManager(ReplayRunner(state, extra), options, cluster="dcaas-a-fx")


# --- jobs --------------------------------------------------------------------

# id: (state, cores/node, memory MB/node, nodes, walltime s, partitions, account, features, eligible, reason)
EXPECTED_JOBS = {
    "2": ("running", 2, 512, 2, 3600, ("batch",), "physics", {"dcaas_small"}, True, None),
    "3": ("running", 1, 300, 1, None, ("batch",), None, set(), True, None),  # --mem-per-cpu=300
    "4": ("running", 1, 256, 1, None, ("batch",), None, set(), True, None),  # DefMemPerCPU=256
    "5": ("running", 1, 256, 1, None, ("batch",), None, set(), True, None),  # COMPLETING holds its node
    "15_2": ("running", 1, 256, 2, 365 * 86400, ("batch",), None, {"dcaas_small"}, True, None),
    "7": ("pending", 1, 256, 2, 1800, ("batch",), None, {"dcaas_small"}, True, "Resources"),
    "8": ("pending", 1, 256, 1, None, ("batch",), None, set(), False, "JobHeldUser"),
    "9": ("pending", 1, 256, 1, None, ("batch",), None, {"dcaas_big"}, False, "JobHeldAdmin"),
    "10": ("pending", 2, 512, 1, None, ("batch",), None, set(), False, "Dependency"),
    "11": ("pending", 1, 256, 1, None, ("batch",), None, set(), False, "DependencyNeverSatisfied"),
    "12": ("pending", 1, 256, 1, None, ("batch",), None, set(), False, "BeginTime"),
    "13": ("pending", 4, 6000, 1, 86400, ("batch",), None, {"dcaas", "dcaas_big"}, True, "ReqNodeNotAvail"),
    "14": ("pending", 1, 256, 1, None, ("batch",), None, set(), False, "ReqNodeNotAvail; constraint"),
    "15_1": ("pending", 2, 512, 1, 365 * 86400, ("batch",), None, {"dcaas_small"}, True, "None"),
    "15_3": ("pending", 1, 256, 2, None, ("batch",), None, {"dcaas_small"}, False, "JobArrayTaskLimit"),
    "15_4": ("pending", 1, 256, 2, None, ("batch",), None, {"dcaas_small"}, False, "JobArrayTaskLimit"),
    "15_5": ("pending", 1, 256, 2, None, ("batch",), None, {"dcaas_small"}, False, "JobArrayTaskLimit"),
    "16": ("pending", 2, 1200, 2, None, ("batch",), None, {"dcaas_small"}, True, "Priority"),
    "17": ("pending", 1, 256, 1, None, ("maint",), None, set(), False, "PartitionDown"),
    "18": ("pending", 1, 256, 1, 3600, ("short",), None, set(), False, "PartitionTimeLimit"),
    "19": ("pending", 1, 256, 1, 300, ("batch", "short"), None, {"dcaas_big"}, True, "Resources"),
    "20": ("pending", 1, 256, 1, None, ("batch",), None, set(), False, "Priority; needs the named nodes"),
    "21": ("pending", 4, 1024, 1, None, ("batch",), None, {"dcaas_big"}, True, "ReqNodeNotAvail"),
}


def test_every_pending_and_running_job_and_no_finished_one() -> None:
    jobs = manager().jobs()
    assert sorted(j.id for j in jobs) == sorted(EXPECTED_JOBS)  # 1 FAILED and 6 COMPLETED are dropped


@pytest.mark.parametrize("job_id", sorted(EXPECTED_JOBS))
def test_job_fields(job_id: str) -> None:
    job = {j.id: j for j in manager().jobs()}[job_id]
    state, cores, memory, nodes, walltime, partitions, account, features, eligible, reason = EXPECTED_JOBS[job_id]
    got = (job.state, job.cores, job.memory_mb, job.nodes, job.walltime_s, job.partitions, job.account)
    assert got == (state, cores, memory, nodes, walltime, partitions, account)
    assert job.features == features
    assert job.user == "alice"
    assert job.eligible is eligible
    if reason is None:
        assert job.reason is None
    else:
        assert job.reason is not None and job.reason.startswith(reason)
    assert job.submit_time and job.submit_time > 1.7e9


def test_running_jobs_carry_expanded_node_lists() -> None:
    jobs = {j.id: j for j in manager().jobs()}
    assert jobs["2"].node_names == (f"{P}small-alloc1", f"{P}small-alloc2")  # printed as small-alloc[1-2]
    assert jobs["15_2"].node_names == (f"{P}small-mixed", f"{P}small-cg")
    assert jobs["5"].node_names == (f"{P}small-cg",)
    # A requeued array task still names the node it ran on; pending jobs run nowhere.
    assert all(not j.node_names for j in jobs.values() if j.pending)


def test_running_first_then_pending_in_slurm_priority_order() -> None:
    ids = [j.id for j in manager().jobs()]
    assert ids[:5] == ["2", "3", "4", "5", "15_2"]
    pending = ids[5:]
    # Priority descending (as squeue.txt shows it), held jobs (priority 0) last.
    assert pending[:3] == ["7", "10", "11"]
    assert pending[-2:] == ["8", "9"]
    assert pending.index("15_1") < pending.index("15_3") < pending.index("16")


def test_empty_cluster() -> None:
    assert manager("empty").jobs() == []
    assert manager("empty").nodes() == []


def test_output_that_is_not_json_names_the_missing_plugins() -> None:
    class Plain(Runner):
        def run(self, argv, check=True, input_text=None):
            return "JOBID PARTITION NAME\n"

    with pytest.raises(CommandError, match=re.escape("openapi/v0.0.38")):
        SlurmManager(Plain()).jobs()


def test_errors_reported_inside_the_json_are_raised() -> None:
    class Failing(Runner):
        def run(self, argv, check=True, input_text=None):
            return json.dumps({"errors": [{"error": "Unable to contact slurm controller", "error_number": 1}]})

    with pytest.raises(CommandError, match="Unable to contact slurm controller"):
        SlurmManager(Failing()).nodes()


# --- answers it cannot read: refused whole, never read as fewer nodes or jobs ---

DROP = object()  # a field taken out of a record


def answer(body: object) -> Runner:
    class Fixed(Runner):
        def run(self, argv, check=True, input_text=None):
            return body if isinstance(body, str) else json.dumps(body)

    return Fixed()


def mutated(state: str, command: str, index: int, key: str | None, value: object) -> str:
    """A captured answer with one record's field (or the whole record, key None) replaced or dropped."""
    with open(os.path.join(FIXTURES, state, f"{command}-json.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    records = data["nodes" if command == "sinfo" else "jobs"]
    if key is None:
        records[index] = value
    elif value is DROP:
        del records[index][key]
    else:
        records[index][key] = value
    return json.dumps(data)


@pytest.mark.parametrize("state", ["busy", "cloud-idle", "cloud-configuring", "cloud-down", "dyn-running"])
def test_slurm_24_11_sinfo_is_refused_not_read_as_no_nodes(state: str) -> None:
    # Real Slurm 24.11 output (fixtures/slurm/24.11): no 'nodes' key at all.
    with pytest.raises(CommandError) as err:
        manager(f"24.11/{state}").nodes()
    message = str(err.value)
    for words in ("no 'nodes' list", "'sinfo' list", "Slurm '24.11.5'", "scontrol show node --json"):
        assert words in message


@pytest.mark.parametrize(
    "body",
    [{}, {"errors": [], "meta": {}}, {"nodes": None}, {"nodes": "n1"}, {"nodes": {}}, {"nodes": 3}],
    ids=["empty", "no-key", "null", "text", "object", "number"],
)
@pytest.mark.parametrize("reader", ["nodes", "jobs"])
def test_an_answer_without_its_list_is_refused(reader: str, body: dict) -> None:
    key = "nodes" if reader == "nodes" else "jobs"
    body = {key if k == "nodes" else k: v for k, v in body.items()}
    with pytest.raises(CommandError, match=f"no '{key}' list"):
        getattr(SlurmManager(answer(body)), reader)()


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (None, "n1", "nodes[3] is str 'n1', not an object"),
        (None, None, "nodes[3] is NoneType"),
        ("name", DROP, "nodes[3] has no node name"),
        ("name", "", "nodes[3] has no node name"),
        ("name", 7, "nodes[3] field 'name' is not text"),
        ("state", DROP, "(nodes[3]) has no node state"),
        ("state", "bogus", "(nodes[3]) has no node state dcaas knows ('state': 'bogus')"),
        ("state", {"base": "idle"}, "(nodes[3]) field 'state' is not a state word"),
        ("state_flags", ["DRAIN", 1], "field 'state_flags' is not a state word"),
        ("alloc_cpus", DROP, "has no 'alloc_cpus'"),
        ("alloc_cpus", None, "has no 'alloc_cpus'"),
        ("alloc_cpus", "one", "field 'alloc_cpus' is not a whole number: 'one'"),
        ("alloc_cpus", "1e999", "field 'alloc_cpus' is not a whole number"),
        ("alloc_cpus", INF, "field 'alloc_cpus' is not a whole number: inf"),
        ("alloc_cpus", NAN, "field 'alloc_cpus' is not a whole number: nan"),
        ("alloc_cpus", True, "field 'alloc_cpus' is not a whole number: True"),
        ("alloc_cpus", 0.5, "field 'alloc_cpus' is not a whole number"),
        ("alloc_cpus", -1, "field 'alloc_cpus' is negative"),
        ("alloc_cpus", 2**70, "field 'alloc_cpus' is more than 64 bits"),
        ("alloc_cpus", {"set": True, "number": {"number": 1}}, "field 'alloc_cpus' holds {'number': 1}"),
        ("alloc_cpus", {"set": "yes", "number": 1}, "field 'alloc_cpus' is not a number or a {set"),
        ("cpus", [2], "field 'cpus' is not a whole number"),
        ("real_memory", {}, "field 'real_memory' is not a number or a {set"),
        ("last_busy", 1e300, "field 'last_busy' is more than 64 bits"),
        ("features", ["dcaas"], "field 'features' is not text"),
        ("reason", {"description": "x"}, "field 'reason' is not text"),
    ],
)
def test_a_node_record_of_the_wrong_shape_fails_the_whole_answer(key, value, message) -> None:
    runner = answer(mutated("busy", "sinfo", 3, key, value))  # small-draining: mixed+DRAIN, one job
    with pytest.raises(CommandError, match=re.escape(message)) as err:
        SlurmManager(runner).nodes()
    assert "sinfo --json" in str(err.value)


def test_a_node_listed_twice_fails_the_answer() -> None:
    with open(os.path.join(FIXTURES, "busy", "sinfo-json.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    data["nodes"].append({**data["nodes"][0], "state": "idle", "alloc_cpus": 0})
    with pytest.raises(CommandError, match=re.escape(f"nodes[8] lists node '{P}small-alloc1' a second time")):
        SlurmManager(answer(data)).nodes()


def _job_index(job_id: int) -> int:
    with open(os.path.join(FIXTURES, "busy", "squeue-json.json"), encoding="utf-8") as fh:
        return [r["job_id"] for r in json.load(fh)["jobs"]].index(job_id)


@pytest.mark.parametrize(
    ("job", "key", "value", "message"),
    [
        (2, None, 5, "is int 5, not an object"),
        (2, "nodes", DROP, "job 2 (jobs[1]) is running but names no nodes ('nodes': None)"),
        (2, "nodes", None, "is running but names no nodes"),
        (2, "nodes", "", "is running but names no nodes ('nodes': '')"),
        (2, "nodes", "(null)", "is running but names no nodes"),
        (2, "nodes", ["small-alloc1"], "field 'nodes' is not text"),
        (2, "nodes", "n[1-" + "9" * 5000 + "]", "field 'nodes' cannot be read"),
        (2, "job_state", "BOGUS", "has no job state dcaas knows ('job_state': 'BOGUS')"),
        (2, "job_state", DROP, "has no job state dcaas knows"),
        (2, "job_state", ["RUNNING", 1], "field 'job_state' is not a state word"),
        (2, "job_id", DROP, "jobs[1] has no 'job_id'"),
        (2, "job_id", "2x", "jobs[1] field 'job_id' is not a whole number"),
        (2, "cpus", "four", "field 'cpus' is not a whole number"),
        (2, "node_count", INF, "field 'node_count' is not a whole number"),
        (2, "submit_time", 1e300, "field 'submit_time' is more than 64 bits"),
        (2, "partition", ["batch"], "field 'partition' is not text"),
        (7, "state_reason", 5, "field 'state_reason' is not text"),
        (7, "priority", -5, "field 'priority' is negative"),
        (1, "job_state", "NEW_IN_SLURM_99", "has no job state dcaas knows"),  # a FAILED job's record
    ],
)
def test_a_job_record_of_the_wrong_shape_fails_the_whole_answer(job, key, value, message) -> None:
    runner = answer(mutated("busy", "squeue", _job_index(job), key, value))
    with pytest.raises(CommandError, match=re.escape(message)) as err:
        SlurmManager(runner).jobs()
    assert "squeue --json" in str(err.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * 100_000, "output is JSON no Slurm prints"),
        ({"errors": 5, "nodes": []}, "'errors' is int 5, not a list"),
        ({"errors": [{}], "nodes": []}, "Slurm reported 1 error(s), the first: {}"),
        ({"errors": [None], "nodes": []}, "Slurm reported 1 error(s)"),
        ({"errors": [""], "nodes": []}, "Slurm reported 1 error(s)"),
    ],
)
def test_answers_python_or_slurm_cannot_give_are_refused(body: object, message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        SlurmManager(answer(body)).nodes()


@pytest.mark.parametrize("spec", ["3-1", "1-5:0", "1-99999999999999999999", "\u0661-\u0663", "1-" + "9" * 5000])
def test_array_task_lists_slurm_never_prints_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="array task list"):
        array_tasks(spec)


# --- nodes -------------------------------------------------------------------

# name: (state, cores, cores_alloc, reason)
EXPECTED_NODES = {
    "small-alloc1": ("busy", 2, 2, None),
    "small-alloc2": ("busy", 2, 2, None),
    "small-mixed": ("busy", 2, 2, None),
    "small-draining": ("draining", 2, 1, "dcaas: idle for 600 s"),
    "small-drained": ("drained", 2, 0, "disk check, ticket 4711"),
    "small-gone": ("down", 2, 0, "Not responding"),
    "small-cg": ("busy", 2, 1, None),
    "spare-idle": ("idle", 2, 0, None),
}


@pytest.mark.parametrize("short", sorted(EXPECTED_NODES))
def test_node_fields(short: str) -> None:
    nodes = {n.name: n for n in manager().nodes()}
    node = nodes[P + short]
    assert (node.state, node.cores, node.cores_alloc, node.reason) == EXPECTED_NODES[short]
    assert node.memory_mb == 2000
    resource = short.split("-", maxsplit=1)[0]
    assert node.features == {"dcaas", f"dcaas_{resource}"}
    assert node.address and re.match(r"^10\.89\.\d+\.\d+$", node.address)
    assert node.jobs == ()  # the merge takes jobs from the running jobs' node lists
    assert node.last_busy and node.last_busy > 1.7e9  # epoch seconds, from sinfo's last_busy


def test_nodes_once_each_and_no_future_placeholders() -> None:
    names = [n.name for n in manager().nodes()]
    assert sorted(names) == sorted(P + s for s in EXPECTED_NODES)  # no *-hold-big/-huge


@pytest.mark.parametrize(
    ("words", "alloc", "state"),
    [
        ({"IDLE"}, 0, WlmState.IDLE),
        ({"MIXED"}, 1, WlmState.BUSY),
        ({"IDLE", "COMPLETING"}, 0, WlmState.BUSY),
        ({"IDLE", "DRAIN"}, 0, WlmState.DRAINED),
        ({"MIXED", "DRAIN"}, 1, WlmState.DRAINING),
        ({"IDLE", "DRAIN", "COMPLETING"}, 0, WlmState.DRAINING),
        ({"DOWN", "DRAIN"}, 0, WlmState.DOWN),
        ({"IDLE", "NOT_RESPONDING"}, 0, WlmState.DOWN),  # what RESUME shows for a moment
        # Cloud nodes, as 22.05 shows them (tests/unit/fixtures/slurm/cloud).
        ({"IDLE", "CLOUD", "POWERED_DOWN"}, 0, WlmState.OFF),
        ({"ALLOCATED", "CLOUD", "NOT_RESPONDING", "POWERING_UP"}, 2, WlmState.POWERING_UP),
        ({"IDLE", "CLOUD", "POWERING_DOWN"}, 0, WlmState.POWERING_DOWN),
        ({"DOWN", "CLOUD", "POWERED_DOWN", "NOT_RESPONDING"}, 0, WlmState.DOWN),  # ResumeTimeout reached
        ({"MIXED", "CLOUD", "POWER_DOWN"}, 1, WlmState.BUSY),  # powers down when its jobs end
        ({"IDLE", "FAIL"}, 0, WlmState.DOWN),
        ({"UNKNOWN"}, 0, WlmState.UNKNOWN),
    ],
)
def test_node_state_normalisation(words: set[str], alloc: int, state: WlmState) -> None:
    # The enum itself, never a string the core would compare by its spelling.
    assert node_state(words, alloc) is state


def test_newer_slurm_shapes_are_read_too() -> None:
    # Slurm 23.02+ prints states as lists and numbers as {set, infinite, number}.
    sinfo = {
        "nodes": [
            {
                "name": "c-small-1",
                "state": ["IDLE", "DRAIN", "DYNAMIC_NORM"],
                "cpus": 4,
                "alloc_cpus": 0,
                "real_memory": {"set": True, "infinite": False, "number": 8000},
                "features": "dcaas,dcaas_small",
                "address": "10.0.0.5",
                "reason": "dcaas: idle",
            }
        ]
    }
    squeue = {
        "jobs": [
            {
                "job_id": 7,
                "job_state": ["PENDING"],
                "state_reason": "Resources",
                "node_count": {"set": True, "infinite": False, "number": 2},
                "cpus": {"set": True, "infinite": False, "number": 8},
                "memory_per_node": {"set": False, "infinite": False, "number": 0},
                "memory_per_cpu": {"set": True, "infinite": False, "number": 1000},
                "time_limit": {"set": True, "infinite": True, "number": 0},
                "priority": {"set": True, "infinite": False, "number": 100},
                "partition": "batch",
                "user_name": "bob",
            }
        ]
    }

    class Newer(Runner):
        def run(self, argv, check=True, input_text=None):
            return json.dumps(squeue if argv[0] == "squeue" else sinfo)

    mgr = SlurmManager(Newer())
    (node,) = mgr.nodes()
    assert (node.state, node.memory_mb) == ("drained", 8000)
    (job,) = mgr.jobs()
    assert (job.state, job.nodes, job.cores, job.memory_mb, job.walltime_s) == ("pending", 2, 4, 4000, None)


# --- pending reasons, constraints, arrays -------------------------------------


@pytest.mark.parametrize(
    ("reason", "eligible"),
    [
        (None, True),
        ("None", True),
        ("Resources", True),
        ("Priority", True),
        ("ReqNodeNotAvail", True),
        ("PartitionConfig", True),
        ("PartitionNodeLimit", True),
        ("Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved_for_jobs_in_higher_priority_partitions", True),
        ("Dependency", False),
        ("DependencyNeverSatisfied", False),
        ("JobHeldUser", False),
        ("JobHeldAdmin", False),
        ("BeginTime", False),
        ("PartitionDown", False),
        ("PartitionTimeLimit", False),
        ("AssocGrpCpuLimit", False),
        ("AssocMaxJobsLimit", False),
        ("QOSMaxWallDurationPerJobLimit", False),
        ("QOSGrpNodeLimit", False),
        ("Licenses", False),
    ],
)
def test_eligibility(reason: str | None, eligible: bool) -> None:
    assert eligibility(reason) == (eligible, None)


def test_unknown_reason_is_not_planned_for_and_says_why() -> None:
    eligible, note = eligibility("SomethingNewIn25")
    assert eligible is False and note and "does not know" in note


@pytest.mark.parametrize(
    ("constraint", "features", "understood"),
    [
        ("", set(), True),
        (None, set(), True),
        ("dcaas_small", {"dcaas_small"}, True),
        ("dcaas&dcaas_big", {"dcaas", "dcaas_big"}, True),
        ("ib,avx512", {"ib", "avx512"}, True),
        ("dcaas_big|dcaas_huge", set(), False),
        ("[rack1|rack2]", set(), False),
        ("gpu*2", set(), False),
        ("(a&b)|c", set(), False),
    ],
)
def test_constraints(constraint: str | None, features: set[str], understood: bool) -> None:
    got, note = parse_constraint(constraint)
    assert got == features
    assert (note is None) is understood


@pytest.mark.parametrize(
    ("spec", "tasks"),
    [
        ("3-5%2", ["3", "4", "5"]),
        ("1,4-5", ["1", "4", "5"]),
        ("0-10:5", ["0", "5", "10"]),
        ("1-4000000", [str(n) for n in range(1, 10_001)]),
        ("", []),
        (None, []),
    ],
)
def test_array_task_lists(spec: str | None, tasks: list[str]) -> None:
    assert array_tasks(spec) == tasks


def test_array_limit_caps_eligible_tasks() -> None:
    # One task running, limit 3: two of the five not started may start.
    records = [
        {
            "job_id": 30,
            "array_job_id": 30,
            "array_task_id": None,
            "array_task_string": "2-6",
            "array_max_tasks": 3,
            "job_state": "PENDING",
            "state_reason": "Resources",
            "priority": 10,
            "cpus": 1,
            "node_count": 1,
        },
        {
            "job_id": 31,
            "array_job_id": 30,
            "array_task_id": 1,
            "array_max_tasks": 3,
            "job_state": "RUNNING",
            "nodes": "c-small-1",
            "cpus": 1,
            "node_count": 1,
        },
    ]

    class Arr(Runner):
        def run(self, argv, check=True, input_text=None):
            return json.dumps({"jobs": records})

    jobs = SlurmManager(Arr()).jobs()
    assert [(j.id, j.state, j.eligible) for j in jobs] == [
        ("30_1", "running", True),
        ("30_2", "pending", True),
        ("30_3", "pending", True),
        ("30_4", "pending", False),
        ("30_5", "pending", False),
        ("30_6", "pending", False),
    ]
    assert jobs[-1].reason == "JobArrayTaskLimit"


# --- drain, resume, remove (recorded real scontrol results) -------------------


def test_drain_adds_the_engine_prefix_once() -> None:
    mgr = manager()
    mgr.drain(f"{P}spare-idle", "idle for 600 s")
    mgr.drain(f"{P}spare-idle", f"{DRAIN_REASON_PREFIX} idle for 600 s")
    mgr.drain(f"{P}spare-idle", "idle\nfor   600 s")
    expected = ["scontrol", "update", f"NodeName={P}spare-idle", "State=DRAIN", "Reason=dcaas: idle for 600 s"]
    assert mgr.runner.calls == [expected] * 3


def test_drain_of_an_unknown_node_fails_with_slurms_words() -> None:
    (unknown,) = [r for r in ReplayRunner().recorded if f"NodeName={P}nosuch" in r["argv"]]
    # Captured with Reason=x; Slurm's answer is about the name, whatever the reason.
    as_sent = {**unknown, "argv": [*unknown["argv"][:-1], "Reason=dcaas: x"]}
    with pytest.raises(CommandError, match="Invalid node name specified"):
        SlurmManager(ReplayRunner(extra=[as_sent])).drain(f"{P}nosuch", "x")


def test_resume_and_resume_of_a_node_that_is_not_drained() -> None:
    mgr = manager()
    mgr.resume(f"{P}spare-idle")  # scontrol said rc=0
    # The captured second RESUME failed "Invalid node state specified": nothing to do.
    resume = ["scontrol", "update", f"NodeName={P}spare-idle", "State=RESUME"]
    second = [r for r in mgr.runner.recorded if r["argv"] == resume][1]
    assert second["rc"] == 1
    SlurmManager(ReplayRunner(extra=[second])).resume(f"{P}spare-idle")


def test_remove_refused_while_the_node_runs_a_job() -> None:
    with pytest.raises(CommandError, match="Requested nodes are busy"):
        manager().remove(f"{P}small-draining")


def test_remove_and_remove_again() -> None:
    mgr = manager()
    mgr.remove(f"{P}small-drained")
    gone = [r for r in mgr.runner.recorded if r["argv"] == ["scontrol", "delete", f"NodeName={P}small-drained"]][1]
    assert "Invalid node name specified" in gone["stderr"]
    SlurmManager(ReplayRunner(extra=[gone])).remove(f"{P}small-drained")


def test_update_address() -> None:
    mgr = manager()
    mgr.update_address(f"{P}spare-idle", f"{P}spare-idle")
    assert mgr.runner.calls == [["scontrol", "update", f"NodeName={P}spare-idle", f"NodeAddr={P}spare-idle"]]
    with pytest.raises(ValueError, match="not a host name"):
        mgr.update_address(f"{P}spare-idle", "10.0.0.1 State=DOWN")


@pytest.mark.parametrize("bad", ["n[1-2]", "a,b", "", "a b", "NodeName=x"])
def test_commands_take_single_node_names_only(bad: str) -> None:
    mgr = manager()
    for call in (mgr.resume, mgr.remove, lambda n: mgr.drain(n, "x")):
        with pytest.raises(ValueError, match="single Slurm node name"):
            call(bad)
    assert mgr.runner.calls == []


# --- join_config -------------------------------------------------------------

SMALL = Resource(name="small", flavor="m1.small", image="worker", cores=2, memory_mb=2000, features=("ib",))
KEY = bytes(range(256)) * 4  # 1024 bytes, like `mungekey` makes


@pytest.fixture
def key_file(tmp_path) -> str:
    path = tmp_path / "munge.key"
    path.write_bytes(KEY)
    path.chmod(0o400)
    return str(path)


def slurmd_argv(join: dict) -> list[str]:
    """SLURMD_OPTIONS as the worker's slurmd unit hands it to slurmd: through `sh -c 'eval ...'`."""
    (default,) = [f for f in join["write_files"] if f["path"] == "/etc/default/slurmd"]
    (line,) = [x for x in default["content"].splitlines() if x.startswith("SLURMD_OPTIONS=")]
    value = re.fullmatch(r'SLURMD_OPTIONS="([^"\\$`]*)"', line).group(1)  # what systemd's EnvironmentFile reads
    out = subprocess.run(
        ["sh", "-c", 'eval set -- "$SLURMD_OPTIONS"; printf "%s\\n" "$@"'],
        env={"SLURMD_OPTIONS": value, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def test_join_config(key_file: str) -> None:
    mgr = SlurmManager(Runner(), {"conf_server": "head:6817", "munge_key_file": key_file}, cluster="c")
    join = mgr.join_config(SMALL, "c-small-1a2b3c")
    key, default = join["write_files"]
    assert key["path"] == "/etc/munge/munge.key"
    assert (key["encoding"], key["owner"], key["permissions"]) == ("b64", "munge:munge", "0400")
    assert base64.b64decode(key["content"]) == KEY
    assert (default["owner"], default["permissions"]) == ("root:root", "0644")
    assert slurmd_argv(join) == [
        "-Z",
        "--conf-server",
        "head:6817",
        "-N",
        "c-small-1a2b3c",
        "--conf",
        "Feature=dcaas,dcaas_small,ib CPUs=2 RealMemory=2000",
    ]
    assert join["runcmd"] == [["systemctl", "restart", "munge"], ["systemctl", "enable", "--now", "slurmd"]]


def test_join_config_renders_into_valid_user_data(key_file: str) -> None:
    mgr = SlurmManager(Runner(), {"conf_server": "head", "munge_key_file": key_file})
    doc = yaml.safe_load(render(mgr.join_config(SMALL, "c-small-1")))
    assert doc["runcmd"][-1] == ["systemctl", "enable", "--now", "slurmd"]


def test_memory_reserve_and_extra_node_parameters(key_file: str) -> None:
    res = Resource(
        name="gpu",
        flavor="g1",
        image="w",
        cores=8,
        memory_mb=32000,
        wlm_options={"slurm_node_conf": {"Weight": 10, "Gres": "gpu:1"}},
    )
    opts = {"conf_server": "head", "munge_key_file": key_file, "memory_reserve_mb": 500}
    argv = slurmd_argv(SlurmManager(Runner(), opts).join_config(res, "c-gpu-1"))
    assert argv[-1] == "Feature=dcaas,dcaas_gpu CPUs=8 RealMemory=31500 Gres=gpu:1 Weight=10"


@pytest.mark.parametrize(
    ("options", "resource", "message"),
    [
        ({"munge_key_file": "KEY"}, SMALL, "conf_server must name the Slurm head"),
        ({"conf_server": "head; reboot", "munge_key_file": "KEY"}, SMALL, "conf_server"),
        ({"conf_server": "head"}, SMALL, "munge_key_file must name"),
        (
            {"conf_server": "head", "munge_key_file": "/nonexistent/munge.key"},
            SMALL,
            "cannot read munge key file /nonexistent/munge.key: No such file",
        ),
        (
            {"conf_server": "head", "munge_key_file": "KEY"},
            Resource(name="x", flavor="f", image="i", cores=1, memory_mb=1000, features=("a b",)),
            "not plain words",
        ),
        ({"conf_server": "head", "munge_key_file": "KEY", "memory_reserve_mb": 2000}, SMALL, "leaves nothing"),
        (
            {"conf_server": "head", "munge_key_file": "KEY"},
            Resource(
                name="x",
                flavor="f",
                image="i",
                cores=1,
                memory_mb=1000,
                wlm_options={"slurm_node_conf": {"NodeName": "other"}},
            ),
            "NodeName is set by dcaas",
        ),
    ],
)
def test_join_config_errors_name_the_problem_never_the_key(key_file, options, resource, message) -> None:
    options = {k: (key_file if v == "KEY" else v) for k, v in options.items()}
    with pytest.raises(SlurmConfigError, match=re.escape(message)) as err:
        SlurmManager(Runner(), options).join_config(resource, "c-x-1")
    assert base64.b64encode(KEY).decode()[:16] not in str(err.value)


def test_short_munge_key_is_refused(tmp_path) -> None:
    path = tmp_path / "munge.key"
    path.write_bytes(b"s3cr3t")
    with pytest.raises(SlurmConfigError, match="holds 6 bytes") as err:
        SlurmManager(Runner(), {"conf_server": "head", "munge_key_file": str(path)}).join_config(SMALL, "c-1")
    assert "s3cr3t" not in str(err.value)


def test_bad_node_name_is_refused(key_file: str) -> None:
    with pytest.raises(ValueError, match="single Slurm node name"):
        SlurmManager(Runner(), {"conf_server": "head", "munge_key_file": key_file}).join_config(SMALL, "c x")


def test_pending_ids_read_squeue_plain_output():
    argv = ["squeue", "--noheader", "--states=PENDING", "--format=%i"]
    mgr = manager(extra=[{"argv": argv, "rc": 0, "stdout": "101\n120_[4-9]\n\n  102 \n", "stderr": ""}])
    assert mgr.pending_ids() == frozenset({"101", "102", "120_[4-9]"})
    assert mgr.runner.calls == [argv]


# --- cloud nodes (wlm.nodes: cloud) ------------------------------------------


class CloudReplay(ReplayRunner):
    """Real output of a cloud-node head (fixtures/slurm/cloud*/, see the README)."""

    def run(self, argv: Sequence[str], check: bool = True, input_text: str | None = None) -> str:
        if list(argv[:3]) == ["env", "SLURM_TIME_FORMAT=%s", "squeue"]:
            self.calls.append(list(argv))
            with open(os.path.join(FIXTURES, self.state, "squeue-start.txt"), encoding="utf-8") as fh:
                return fh.read()
        return super().run(argv, check, input_text)


def cloud_manager(state: str = "cloud", runner: Runner | None = None) -> SlurmManager:
    return SlurmManager(runner or CloudReplay(state), {}, cluster="exp", cloud_nodes=True)


def test_cloud_node_states_from_real_sinfo() -> None:
    up = {n.name: n.state for n in cloud_manager("cloud").nodes()}
    assert up == {"exp-small-1": WlmState.BUSY, "exp-small-2": WlmState.BUSY, "exp-small-3": WlmState.POWERING_UP}
    assert all(isinstance(state, WlmState) for state in up.values())
    down = {n.name: (n.state, n.reason) for n in cloud_manager("cloud-down").nodes()}
    assert down["exp-small-3"] == (WlmState.DOWN, "ResumeTimeout reached")
    assert down["exp-small-1"][0] is WlmState.IDLE


def test_planned_start_and_nodes_of_pending_jobs() -> None:
    jobs = {j.id: j for j in cloud_manager("cloud").jobs()}
    assert jobs["8"].pending and jobs["8"].start_time == 1795600906.0
    assert jobs["8"].planned_nodes == ("exp-small-1", "exp-small-2", "exp-small-3")
    # A job placed on a node that is powering up is CONFIGURING: it holds the node.
    assert not jobs["9"].pending and jobs["9"].node_names == ("exp-small-3",)
    assert jobs["7"].start_time is None and jobs["7"].planned_nodes == ()
    # Not planned (N/A): no start time.
    waiting = {j.id: j for j in cloud_manager("cloud-down").jobs()}
    assert waiting["8"].pending and waiting["8"].start_time is None and waiting["8"].planned_nodes == ()


def test_dynamic_mode_does_not_ask_for_plans() -> None:
    runner = CloudReplay("cloud")
    SlurmManager(runner, {}, cluster="exp").jobs()
    assert runner.calls == [["squeue", "--json"]]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("8|1795600906|exp-small-[1-3]", {"8": (1795600906.0, ("exp-small-1", "exp-small-2", "exp-small-3"))}),
        ("8|N/A|(null)", {}),
        ("8|0|(null)", {}),
        ("8|1795600906|(null)", {"8": (1795600906.0, ())}),
        ("120_[4-9%2]|1795600906|n1", {"120_4": (1795600906.0, ("n1",))}),  # the record's first task
        ("garbage", {}),
        # Lines it cannot read are left out (a lost plan touches no node with a job).
        ("8|\u00b2|n1", {}),  # a digit to str.isdigit, not to int()
        ("8|" + "9" * 400 + "|n1", {}),  # beyond a float
        ("8|1795600906|n[\u0661-\u0663]", {"8": (1795600906.0, ())}),  # not a host list
    ],
)
def test_planned_starts_lines(line: str, expected: dict) -> None:
    class One(Runner):
        def run(self, argv, check=True, input_text=None):
            return line + "\n"

    assert cloud_manager(runner=One()).planned_starts() == expected


def test_pending_ids_include_configuring_jobs_with_cloud_nodes() -> None:
    seen: list[list[str]] = []

    class Rec(Runner):
        def run(self, argv, check=True, input_text=None):
            seen.append(list(argv))
            return "8\n9\n"

    assert cloud_manager(runner=Rec()).pending_ids() == {"8", "9"}
    SlurmManager(Rec(), {}, cluster="exp").pending_ids()
    assert seen[0][2] == "--states=PENDING,CONFIGURING" and seen[1][2] == "--states=PENDING"


@pytest.mark.parametrize(
    ("call", "state"),
    [
        ({}, "State=POWER_DOWN"),
        ({"force": True}, "State=POWER_DOWN_FORCE"),
        (None, "State=POWER_UP"),
    ],
)
def test_power_down_and_up(call: dict | None, state: str) -> None:
    seen: list[list[str]] = []

    class Rec(Runner):
        def run(self, argv, check=True, input_text=None):
            seen.append(list(argv))
            return ""

    mgr = cloud_manager(runner=Rec())
    action = mgr.power_up if call is None else partial(mgr.power_down, **call)
    action("exp-small-3")
    assert seen == [["scontrol", "update", "NodeName=exp-small-3", state]]
    with pytest.raises(ValueError, match="not a single Slurm node name"):
        action("exp-small-[1-3]")


def test_cloud_node_joins_under_its_slurm_name_without_a_node_definition(key_file: str) -> None:
    mgr = SlurmManager(
        Runner(), {"conf_server": "head:6817", "munge_key_file": key_file}, cluster="c", cloud_nodes=True
    )
    join = mgr.join_config(SMALL, "c-small-2")
    # -b: the node counts as booted when slurmd starts (a container shares the
    # host's uptime; Slurm would keep it POWERING_UP). slurm.conf defines it.
    assert slurmd_argv(join) == ["-b", "--conf-server", "head:6817", "-N", "c-small-2"]
    assert base64.b64decode(join["write_files"][0]["content"]) == KEY


def test_the_fix_for_missing_cloud_nodes_is_worded_by_the_adapter() -> None:
    assert "slurm.conf" in SlurmManager(Runner(), {}, cloud_nodes=True).cloud_nodes_hint()
