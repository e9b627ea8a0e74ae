"""Hypothesis fuzzing of the Slurm adapter's readers.

Whatever a broken, half-upgraded or hostile Slurm prints, a reader either
returns what the answer says, all of it, or raises CommandError, which makes
the engine's pass change nothing. No other exception may escape, and no
answer with a broken node or job record may come back as a shorter list:
a node left out looks gone (the engine deletes its instance), a running
job left out leaves its nodes looking free.

Example counts are CI-sized; set DCAAS_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.module_utils.hostlist import compress, expand, sort_key
from ansible_collections.dcaas.cluster.plugins.module_utils.model import WlmNode
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError, Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.arrays import MAX_ARRAY_TASKS, array_tasks
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.slurm import (
    RUNNING_STATES,
    SlurmManager,
    node_state,
)

FIXTURES = os.path.join(os.path.dirname(__file__), *[os.pardir] * 3, "fixtures", "slurm")
EXAMPLES = int(os.environ.get("DCAAS_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
REFUSED = "refused"
DROP = "<dropped>"  # a field taken out of a record
WHOLE = "<record>"  # the record itself replaced

# What one reader call does with a text: (reader, cloud_nodes).
READERS = [
    ("nodes", False),
    ("jobs", False),
    ("jobs", True),  # also reads the planned starts
    ("planned_starts", True),
    ("pending_ids", False),
    ("pending_ids", True),
]


class Answer(Runner):
    """Prints ``text`` for every command."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def run(self, argv, check=True, input_text=None) -> str:
        return self.text


def read(reader: str, text: str, cloud: bool = False) -> Any:
    """What the reader makes of ``text``; REFUSED for CommandError. Anything else escapes, failing the test."""
    try:
        return getattr(SlurmManager(Answer(text), {}, cluster="c", cloud_nodes=cloud), reader)()
    except CommandError as exc:
        assert len(str(exc)) < 1000, "messages echo values cut short"
        return REFUSED


def words(value: Any) -> set[str]:
    """State words of a record the reader accepted (so the field is text or a list of text)."""
    items = value.split("+") if isinstance(value, str) else value or []
    return {item.strip().upper() for item in items if item.strip()}


# --- (a) any text ---------------------------------------------------------------------

# Pieces of JSON and of squeue's plain lines, and things that broke readers:
# digits int() or float() cannot take, deep nesting, lone surrogates.
PIECES = st.sampled_from(
    [
        *"{}[],:|_%\n ",
        '"nodes"',
        '"jobs"',
        '"errors"',
        '"name"',
        '"state"',
        '"alloc_cpus"',
        '"job_state"',
        '"RUNNING"',
        '"idle"',
        "null",
        "true",
        "1e999",
        "NaN",
        "-Infinity",
        "-1",
        "0",
        "7",
        "1795600906",
        "9" * 400,
        "\u00b2",
        "\u0663",
        "N/A",
        "(null)",
        "n[1-3]",
        "_[1-5%2]",
        "\x00",
        "\ud800",
    ]
)
# squeue's plain "id|start|nodes" lines (planned_starts), odd ones included.
PLAN_LINE = st.tuples(
    st.sampled_from(["8", "120_[4-9%2]", "7_3", "120_[x]", ""]) | st.text(max_size=5),
    st.sampled_from(["1795600906", "0", "N/A", "\u00b2", "9" * 400, "-5", ""]) | st.text(max_size=5),
    st.sampled_from(["n1", "n[1-3]", "(null)", "n[\u0661-\u0663]", "a[1-", ""]) | st.text(max_size=8),
).map("|".join)
TEXT = st.one_of(
    st.text(),
    st.lists(PLAN_LINE, max_size=5).map("\n".join),
    st.binary().map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.lists(PIECES, max_size=40).map("".join),
    st.integers(1, 50_000).map(lambda n: "[" * n + "]" * n),
)


@pytest.mark.parametrize(("reader", "cloud"), READERS)
@FUZZ
@given(text=TEXT)
@example(text="8|\u00b2|n1")  # a digit to str.isdigit(), not to int()
@example(text="8|" + "9" * 400 + "|n1")  # a start beyond any float
@example(text="[" * 5000)  # deeper than json.loads can go
def test_any_text_is_read_or_refused(reader: str, cloud: bool, text: str) -> None:
    got = read(reader, text, cloud)
    if reader == "planned_starts":
        for start, names in got.values():
            assert 0 < start < float("inf") and all(isinstance(n, str) for n in names)


# --- (b) any JSON tree ----------------------------------------------------------------

LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["idle", "ALLOCATED", "future", "RUNNING", "PENDING", "n1", "n[1-3]", "(null)", "1e999", "3-5%2"]),
)
# Slurm 23.02+ numbers, with odd members too.
SLURM_NUMBER = st.dictionaries(st.sampled_from(["set", "infinite", "number"]), LEAF, max_size=3)
VALUE = st.recursive(
    LEAF | SLURM_NUMBER,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def mostly(plausible: st.SearchStrategy, odds: int = 3) -> st.SearchStrategy:
    """A plausible value ``odds`` times to one any JSON value: some trees are answers a reader takes."""
    return st.sampled_from([True] * odds + [False]).flatmap(lambda take: plausible if take else VALUE)


COUNT = st.integers(0, 64) | st.integers(0, 64).map(lambda n: {"set": True, "infinite": False, "number": n})
TEXT_FIELD = st.text(max_size=8) | st.none()
NODE_RECORD = st.fixed_dictionaries(
    {
        "name": mostly(st.from_regex(r"n[0-9]{1,2}", fullmatch=True)),
        "state": mostly(st.sampled_from(["idle", "mixed", "allocated", "down", "future", ["IDLE", "DRAIN"]])),
        "alloc_cpus": mostly(COUNT),
    },
    optional={
        "state_flags": mostly(st.lists(st.sampled_from(["DRAIN", "COMPLETING", "FUTURE", "POWERING_UP"])), 7),
        "cpus": mostly(COUNT, 7),
        "real_memory": mostly(COUNT, 7),
        "last_busy": mostly(COUNT, 7),
        "reason": mostly(TEXT_FIELD, 7),
        "features": mostly(TEXT_FIELD, 7),
        "address": mostly(TEXT_FIELD, 7),
    },
)
JOB_RECORD = st.fixed_dictionaries(
    {
        "job_id": mostly(st.integers(1, 99)),
        "job_state": mostly(st.sampled_from(["RUNNING", "PENDING", "COMPLETED", ["RUNNING", "CONFIGURING"]])),
        "nodes": mostly(st.sampled_from(["n1", "n[1-2]", "n[01-03],m5", ""])),
    },
    optional={
        "cpus": mostly(COUNT, 7),
        "node_count": mostly(COUNT, 7),
        "array_job_id": mostly(COUNT, 7),
        "array_task_id": mostly(COUNT | st.none(), 7),
        "array_task_string": mostly(st.sampled_from(["", "1-3", "2,4-6:2%1"]), 7),
        "state_reason": mostly(TEXT_FIELD, 7),
        "partition": mostly(TEXT_FIELD, 7),
    },
)
TREE = st.fixed_dictionaries(
    {
        "nodes": mostly(st.lists(mostly(NODE_RECORD, 7), max_size=3)),
        "jobs": mostly(st.lists(mostly(JOB_RECORD, 7), max_size=3)),
    },
    optional={"errors": mostly(st.just([]), 7), "meta": VALUE},
)


@FUZZ
@given(tree=TREE)
def test_any_json_tree_is_read_whole_or_refused(tree: dict) -> None:
    text = json.dumps(tree)
    nodes = read("nodes", text)
    if nodes is not REFUSED:
        # Every record is there, in order, but the FUTURE placeholders.
        records = tree["nodes"]
        taken = [r for r in records if "FUTURE" not in words(r.get("state")) | words(r.get("state_flags"))]
        assert [n.name for n in nodes] == [r["name"] for r in taken]
        for rec, node in zip(taken, nodes):
            if isinstance(rec["alloc_cpus"], int):
                assert node.cores_alloc == rec["alloc_cpus"]
    for cloud in (False, True):
        jobs = read("jobs", text, cloud)
        if jobs is not REFUSED:
            # Every running record is a running job, on the nodes it names.
            running = [r for r in tree["jobs"] if words(r.get("job_state")) & RUNNING_STATES]
            assert sorted(len(expand(r["nodes"])) for r in running) == sorted(
                len(j.node_names) for j in jobs if not j.pending
            )
            assert all(j.node_names for j in jobs if not j.pending)


# --- (c) real captured answers, broken in places ----------------------------------------

# Values of every JSON shape, most of them wrong where they land. [] is never
# put in place of the whole node or job list: it is what an empty cluster prints.
GARBAGE = [
    DROP,
    None,
    "",
    "(null)",
    "x",
    "a" * 5000,
    {},
    [],
    [[[]]],
    functools.reduce(lambda inner, _: [inner], range(60), []),
    2**80,
    -1,
    True,
    1.5,
    float("nan"),
    float("inf"),
    "1e999",
    {"set": True, "infinite": False, "number": "x"},
    {"set": "yes", "number": 1},
    {"number": {"number": 1}},
]
# The fields the readers use; breaking any other must change nothing.
NODE_READ = {
    "name",
    "state",
    "state_flags",
    "alloc_cpus",
    "cpus",
    "real_memory",
    "reason",
    "features",
    "address",
    "last_busy",
}
JOB_READ = {
    "job_id",
    "job_state",
    "nodes",
    "array_job_id",
    "array_task_id",
    "array_max_tasks",
    "array_task_string",
    "node_count",
    "cpus",
    "tasks_per_node",
    "cpus_per_task",
    "minimum_cpus_per_node",
    "memory_per_node",
    "memory_per_cpu",
    "time_limit",
    "features",
    "submit_time",
    "partition",
    "account",
    "user_name",
    "user_id",
    "state_reason",
    "required_nodes",
    "priority",
}


@functools.cache
def captured(state: str, command: str) -> str:
    with open(os.path.join(FIXTURES, state, f"{command}-json.json"), encoding="utf-8") as fh:
        return fh.read()


def put(target: dict | list, key: Any, value: Any) -> None:
    if value is DROP:
        del target[key]
    else:
        target[key] = copy.deepcopy(value)


@st.composite
def broken(draw: st.DrawFn, command: str) -> tuple[str, dict, set[int], bool]:
    """A captured 22.05 answer with 1-3 breaks: (state, broken data, indexes of broken records, read field hit)."""
    state = draw(st.sampled_from(["busy", "cloud", "cloud-down"]))
    data = json.loads(captured(state, command))
    list_key, read_fields = ("nodes", NODE_READ) if command == "sinfo" else ("jobs", JOB_READ)
    records = data[list_key]
    hit: set[int] = set()
    read_hit = False
    for _break in range(draw(st.integers(1, 3))):
        value = draw(st.sampled_from(GARBAGE))
        if draw(st.integers(0, 9)) == 0:  # the answer's top level
            key = draw(st.sampled_from([list_key, "errors", "meta"]))
            if value == [] and key == list_key:
                continue
            if key in data or value is not DROP:
                put(data, key, value)
                read_hit |= key == list_key or (key == "errors" and value not in (None, [], DROP))
            records = data[list_key] if isinstance(data.get(list_key), list) else []
            continue
        if not records or not isinstance(data.get(list_key), list):
            continue
        index = draw(st.integers(0, len(records) - 1))
        rec = records[index]
        if not isinstance(rec, dict):
            continue
        key = draw(st.sampled_from([WHOLE, *sorted(rec)]))
        if key == WHOLE:
            if value is DROP:
                continue
            put(records, index, value)
            read_hit = True
        else:
            put(rec, key, value)
            read_hit |= key in read_fields
        hit.add(index)
    return state, data, hit, read_hit


def holds_work(node: WlmNode) -> bool:
    return node.state in ("busy", "draining", "powering_up") or node.cores_alloc > 0


@FUZZ
@given(case=broken("sinfo"))
def test_broken_sinfo_is_read_whole_or_refused(case: tuple[str, dict, set[int], bool]) -> None:
    state, data, hit, read_hit = case
    before = read("nodes", captured(state, "sinfo"))
    after = read("nodes", json.dumps(data))
    if after is REFUSED:
        return
    if not read_hit:
        assert after == before  # only fields the reader does not use were broken
        return
    # Never a shorter list: every node is there; the untouched ones as they
    # were, and no broken one that held work looks free.
    assert len(after) == len(before)
    for index, (old, new) in enumerate(zip(before, after)):
        if index not in hit:
            assert new == old
        elif holds_work(old):
            assert holds_work(new)


@FUZZ
@given(case=broken("squeue"))
def test_broken_squeue_is_read_whole_or_refused(case: tuple[str, dict, set[int], bool]) -> None:
    state, data, hit, read_hit = case
    before = read("jobs", captured(state, "squeue"))
    after = read("jobs", json.dumps(data))
    if after is REFUSED:
        return
    if not read_hit:
        assert after == before
        return
    # Every running job is still running somewhere, and every node an
    # untouched running record names is still busy.
    assert sum(not j.pending for j in after) == sum(not j.pending for j in before)
    original = json.loads(captured(state, "squeue"))["jobs"]
    busy = {
        name
        for index, rec in enumerate(original)
        if index not in hit and words(rec["job_state"]) & RUNNING_STATES
        for name in expand(rec["nodes"])
    }
    assert busy <= {name for j in after if not j.pending for name in j.node_names}


# --- (d) generated answers: read exactly, or refused when one record is broken ----------

NAME = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
BASE_STATES = ["IDLE", "ALLOCATED", "MIXED", "DOWN", "UNKNOWN", "FUTURE"]
FLAGS = ["DRAIN", "COMPLETING", "NOT_RESPONDING", "DYNAMIC_NORM", "CLOUD", "POWERED_DOWN", "POWERING_UP"]
BAD_NUMBER = ["x", True, 1.5, -1, 2**64, [1], float("nan"), float("inf"), "1e999", {"set": 1, "number": 2}]
BAD_TEXT = [5, ["a"], {"a": 1}, True]
NODE_BREAKS = {
    WHOLE: [None, "x", [], 5],
    "name": [DROP, None, "", "(null)", *BAD_TEXT],
    "state": [DROP, None, "", "bogus", "drain", 5, ["IDLE", 1], {}],
    "state_flags": [5, [1], {}],
    "alloc_cpus": [DROP, None, {"set": False, "infinite": False, "number": 0}, *BAD_NUMBER],
    "cpus": BAD_NUMBER,
    "real_memory": BAD_NUMBER,
    "last_busy": BAD_NUMBER,
    "features": BAD_TEXT,
    "reason": BAD_TEXT,
    "address": BAD_TEXT,
}


def slurm_number(newer: bool, value: int) -> Any:
    return {"set": True, "infinite": False, "number": value} if newer else value


@st.composite
def node_answer(draw: st.DrawFn) -> tuple[dict, list[WlmNode], bool]:
    """(sinfo --json answer, the nodes it lists, whether one record was broken)."""
    newer = draw(st.booleans())  # 22.05 shapes, or the lists and number objects of 23.02+
    records, expected = [], []
    for name in draw(st.lists(NAME, unique=True, max_size=6)):
        base = draw(st.sampled_from(BASE_STATES))
        flags = draw(st.lists(st.sampled_from(FLAGS), unique=True, max_size=3))
        cpus = draw(st.integers(1, 512))
        alloc = draw(st.integers(0, cpus))
        memory = draw(st.integers(1, 2**31))
        last_busy = draw(st.integers(0, 2**31))
        features = draw(st.lists(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), max_size=3))
        reason = draw(st.text(max_size=20))
        rec = {
            "name": name,
            "state": [base, *flags] if newer else base.lower(),
            "cpus": slurm_number(newer, cpus),
            "alloc_cpus": alloc,
            "real_memory": slurm_number(newer, memory),
            "features": ",".join(features),
            "reason": reason,
            "address": f"10.0.0.{len(records)}",
            "last_busy": slurm_number(newer, last_busy),
        }
        if not newer:
            rec["state_flags"] = flags
        records.append(rec)
        if base != "FUTURE" and "FUTURE" not in flags:
            node = WlmNode(
                name=name,
                state=node_state({base, *flags}, alloc),
                cores=cpus,
                cores_alloc=alloc,
                memory_mb=memory,
                reason=reason if reason not in ("", "(null)") else None,
                features=frozenset(features),
                address=rec["address"],
                last_busy=float(last_busy) or None,
            )
            expected.append(node)
    is_broken = bool(records) and draw(st.booleans())
    if is_broken:
        index = draw(st.integers(0, len(records) - 1))
        rec = records[index]
        future = "FUTURE" in words(rec["state"]) | words(rec.get("state_flags"))
        # A placeholder's other fields are never read.
        keys = [WHOLE, "name", "state", "state_flags"] if future else sorted(NODE_BREAKS)
        key = draw(st.sampled_from(keys))
        value = draw(st.sampled_from(NODE_BREAKS[key]))
        if key == WHOLE:
            records[index] = value
        elif draw(st.booleans()) and len(records) > 1 and key == "name":
            rec["name"] = records[index - 1]["name"]  # listed twice
        else:
            put(rec, key, value)
    return {"meta": {}, "errors": [], "nodes": records}, expected, is_broken


@FUZZ
@given(case=node_answer())
def test_generated_sinfo_is_read_exactly_or_refused_when_broken(case: tuple[dict, list[WlmNode], bool]) -> None:
    answer, expected, is_broken = case
    got = read("nodes", json.dumps(answer))
    assert got == (REFUSED if is_broken else expected)


JOB_STATES = ["RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "PENDING", "COMPLETED", "CANCELLED", "FAILED"]
JOB_BREAKS = {
    WHOLE: [None, "x", [], 5],
    "job_id": [DROP, None, "x", -1, {"set": True}],
    "job_state": [DROP, None, "", "bogus", 5, ["RUNNING", 1]],
    "nodes": [DROP, None, "", "(null)", 5, "a[1-", "n[3-1]"],
    "cpus": BAD_NUMBER,
    "node_count": BAD_NUMBER,
    "partition": BAD_TEXT,
}


@st.composite
def job_answer(draw: st.DrawFn) -> tuple[dict, dict[str, tuple], bool]:
    """(squeue --json answer, id -> what the reader must make of it, whether one record was broken)."""
    newer = draw(st.booleans())
    records, expected = [], {}
    for job_id in draw(st.lists(st.integers(1, 10**6), unique=True, max_size=6)):
        state = draw(st.sampled_from(JOB_STATES))
        cpus, count = draw(st.integers(1, 256)), draw(st.integers(1, 16))
        names = draw(st.lists(NAME, min_size=1, max_size=count, unique=True))
        rec = {
            "job_id": slurm_number(newer, job_id),
            "job_state": [state] if newer else state,
            "array_job_id": slurm_number(newer, 0),
            "array_task_id": {"set": False, "infinite": False, "number": 0} if newer else None,
            "cpus": slurm_number(newer, cpus),
            "node_count": slurm_number(newer, count),
            "memory_per_node": slurm_number(newer, 100),
            "partition": "batch",
            "state_reason": "Resources",
            "nodes": compress(names),
        }
        records.append(rec)
        if state in RUNNING_STATES:
            expected[str(job_id)] = ("running", tuple(sorted(set(names), key=sort_key)))
        elif state == "PENDING":
            expected[str(job_id)] = ("pending", -(-cpus // count), count)
    is_broken = bool(records) and draw(st.booleans())
    if is_broken:
        index = draw(st.integers(0, len(records) - 1))
        kind = records[index]["job_state"]
        kind = kind[0] if newer else kind
        # What the reader reads of a record depends on its state.
        keys = [WHOLE, "job_id", "job_state"]
        keys += ["nodes"] if kind in RUNNING_STATES else []
        keys += ["cpus", "node_count", "partition"] if kind in RUNNING_STATES or kind == "PENDING" else []
        key = draw(st.sampled_from(keys))
        value = draw(st.sampled_from(JOB_BREAKS[key]))
        if key == WHOLE:
            records[index] = value
        else:
            put(records[index], key, value)
    return {"meta": {}, "errors": [], "jobs": records}, expected, is_broken


@FUZZ
@given(case=job_answer())
def test_generated_squeue_is_read_exactly_or_refused_when_broken(case: tuple[dict, dict, bool]) -> None:
    answer, expected, is_broken = case
    got = read("jobs", json.dumps(answer))
    if is_broken:
        assert got == REFUSED
        return
    read_as = {j.id: ("running", j.node_names) if not j.pending else ("pending", j.cores, j.nodes) for j in got}
    assert read_as == expected


# --- array task lists ---------------------------------------------------------------------

SPEC_PIECES = st.sampled_from([*"0123456789,-:%", "9" * 12, "9" * 25, "\u0663", " ", "x"])


@FUZZ
@given(spec=st.one_of(st.text(max_size=30), st.lists(SPEC_PIECES, max_size=20).map("".join)))
def test_array_task_lists_are_read_bounded_or_refused(spec: str) -> None:
    try:
        tasks = array_tasks(spec)
    except ValueError as exc:
        assert "array task list" in str(exc) and len(str(exc)) < 500
        return
    assert len(tasks) <= MAX_ARRAY_TASKS
    assert all(task.isascii() and task.isdigit() and len(task) <= 10 for task in tasks)
