"""Grid Engine adapter against real Grid Engine 8.1.9 output (tests/unit/fixtures/gridengine, see INDEX.md)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Resource
from ansible_collections.dcaas.cluster.plugins.module_utils.naming import DRAIN_REASON_PREFIX
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError, Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm import registry
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.gridengine import (
    QHOST_JOBS,
    QHOST_QUEUES,
    QSTAT,
    QSTAT_PENDING,
    GridEngineConfigError,
    GridEngineManager,
    memory_mb,
    seconds,
)

FIXTURES = os.path.join(os.path.dirname(__file__), *[os.pardir] * 3, "fixtures", "gridengine")
EXAMPLES = int(os.environ.get("DCAAS_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MISSING_GROUP = CommandError(["qconf"], 1, "", 'Host group "@ge_drained" does not exist')


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as fh:
        return fh.read()


class Replay(Runner):
    """Answers each command with a captured file (or text, or an error); records what ran and its stdin."""

    def __init__(self, answers: dict[tuple[str, ...], object]):
        super().__init__()
        self.answers = answers
        self.calls: list[list[str]] = []
        self.stdin: list[str | None] = []

    def run(self, argv: Sequence[str], check: bool = True, input_text: str | None = None) -> str:
        self.calls.append(list(argv))
        self.stdin.append(input_text)
        answer = self.answers.get(tuple(argv))
        if answer is None:
            raise AssertionError(f"no answer for {list(argv)}")
        if isinstance(answer, list):  # successive answers
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, CommandError):
            if check:
                raise answer
            return answer.stdout
        text = str(answer)
        return fixture(text) if text.endswith((".xml", ".txt")) else text


def manager(answers: dict, options: dict | None = None, cluster: str = "ge") -> GridEngineManager:
    base: dict[tuple[str, ...], object] = {
        ("qconf", "-sp", "mpi"): "qconf_sp_mpi.txt",
        ("qconf", "-shgrp", "@ge_drained"): MISSING_GROUP,
    }
    return GridEngineManager(Replay({**base, **answers}), options, cluster=cluster)


def by_id(jobs) -> dict:
    return {j.id: j for j in jobs}


# --- jobs --------------------------------------------------------------------


def test_queued_jobs_error_state_and_memory() -> None:
    ge = manager({QSTAT: "qstat_u_all_r_s_p_pending_eqw.xml"})
    jobs = ge.jobs()
    assert [j.id for j in jobs] == ["8", "1", "3", "5", "6", "9", "10"]  # qstat's priority order
    assert all(j.pending and j.user == "geuser" for j in jobs)
    eqw = by_id(jobs)["8"]  # PE mpi, 2 slots, Eqw: a person must clear it
    assert not eqw.eligible and "error state" in eqw.reason and eqw.cores == 2
    assert by_id(jobs)["3"].memory_mb == 1024  # -l h_vmem=1G per slot
    assert all(j.eligible for j in jobs if j.id != "8")
    assert by_id(jobs)["1"].submit_time is not None


def test_running_pe_and_array_tasks() -> None:
    running = manager({QSTAT: "qstat_u_all_r_s_r.xml"}).jobs()
    assert {j.id: (j.state, j.node_names, j.cores) for j in running} == {
        "11": ("running", ("ge-exec2",), 2),  # PE master queue; its slave host comes from qhost -j
        "12": ("running", ("ge-exec2",), 1),
        "13.1": ("running", ("ge-exec1",), 1),
    }
    pending = manager({QSTAT: "qstat_u_all_r_s_p.xml"}).jobs()
    assert [(j.id, j.memory_mb) for j in pending] == [("13.2", 0), ("13.3", 0), ("14", 512)]


def test_array_ranges_holds_named_hosts_and_foreign_queues() -> None:
    jobs = by_id(manager({QSTAT: "qstat_u_all_r_array_pending.xml"}).jobs())
    assert [i for i in jobs if i.startswith("25.")] == ["25.1", "25.2", "25.3"]  # 1-3:1
    assert all(not jobs[f"25.{t}"].eligible and "hold" in jobs[f"25.{t}"].reason for t in (1, 2, 3))
    assert not jobs["26.1"].eligible and "named host 'ge-placeholder'" in jobs["26.1"].reason
    assert not jobs["16"].eligible and "ge-exec2" in jobs["16"].reason
    assert jobs["21"].partitions == ("zero.q",) and not jobs["21"].eligible and "zero.q" in jobs["21"].reason
    assert jobs["14"].memory_mb == 512  # the larger of h_vmem=512M and mem_free=100M


def test_a_dcaas_queue_request_routes_to_its_resource() -> None:
    text = fixture("qstat_u_all_r_array_pending.xml").replace("zero.q", "ge_small.q")
    jobs = by_id(manager({QSTAT: text}).jobs())
    assert jobs["21"].eligible and jobs["21"].features == frozenset({"dcaas_small"})


def test_rescheduled_and_transferring_states() -> None:
    jobs = by_id(manager({QSTAT: "qstat_u_all_rescheduled_Rq.xml"}).jobs())
    assert jobs["29"].pending and jobs["29"].eligible  # Rq: back in the queue
    assert jobs["30"].state == "running" and jobs["30"].node_names == ("ge-exec3",)  # t


@pytest.mark.parametrize(
    ("rule", "slots", "cores", "nodes", "eligible"),
    [("2", 4, 2, 2, True), ("2", 3, 2, 2, True), ("$pe_slots", 2, 2, 1, True), ("$round_robin", 2, 2, 1, False)],
)
def test_parallel_jobs_take_hosts_from_the_allocation_rule(rule, slots, cores, nodes, eligible) -> None:
    text = (
        fixture("qstat_u_all_r_s_p_pending_eqw.xml")
        .replace("<state>Eqw</state>", "<state>qw</state>")
        .replace("<slots>2</slots>", f"<slots>{slots}</slots>")
    )
    pe = fixture("qconf_sp_mpi.txt").replace("$round_robin", rule)
    answers = {QSTAT: text, ("qconf", "-sp", "mpi"): pe}
    job = by_id(manager(answers, {"parallel_environments": ["mpi"]}).jobs())["8"]
    assert (job.cores, job.nodes, job.eligible) == (cores, nodes, eligible)
    if not eligible:
        assert "allocation_rule $round_robin" in job.reason
    elsewhere = by_id(manager(answers).jobs())["8"]  # a PE no dcaas queue lists: no worker could run it
    assert not elsewhere.eligible and "PE mpi, which the dcaas queues do not offer" in elsewhere.reason


def test_pending_ids() -> None:
    ge = manager({QSTAT_PENDING: "qstat_u_all_r_s_p.xml"})
    assert ge.pending_ids() == frozenset({"13.2,3", "14"})
    assert ge.runner.calls == [list(QSTAT_PENDING)]
    with pytest.raises(CommandError, match="not whole XML"):
        manager({QSTAT_PENDING: fixture("qstat_u_all_r_s_p.xml")[:200]}).pending_ids()


def test_values() -> None:
    assert [memory_mb(v) for v in ("1G", "512M", "100m", "1048576", "1.5g", "2T")] == [1024, 512, 100, 1, 1536, 2**21]
    assert [seconds(v) for v in ("3600", "1:00:00", "0:30:0", "2:0")] == [3600, 3600, 1800, 120]
    for bad in ("", "1X", "-1G", "G"):
        with pytest.raises(ValueError):
            memory_mb(bad)


# --- nodes -------------------------------------------------------------------


def nodes(q: str, j: str, drained: object = MISSING_GROUP, cluster: str = "ge") -> dict:
    ge = manager({QHOST_QUEUES: q, QHOST_JOBS: j, ("qconf", "-shgrp", f"@{cluster}_drained"): drained}, cluster=cluster)
    return {n.name: n for n in ge.nodes()}


def test_busy_hosts_carry_every_job_including_pe_slaves() -> None:
    got = nodes("qhost_q_up.xml", "qhost_j_up.xml")
    assert {n: (v.state, v.cores, v.cores_alloc, v.jobs) for n, v in got.items()} == {
        "ge-exec1": ("busy", 2, 2, ("11", "13.1")),
        "ge-exec2": ("busy", 2, 2, ("11", "12")),
    }


def test_disabled_and_orphaned() -> None:
    # qhost -q 20 s after qhost -j, same hosts and jobs: small.q@ge-exec2 'do'.
    got = nodes("qhost_q_disabled_orphaned.xml", "qhost_j_up.xml")
    assert got["ge-exec2"].state == "draining" and got["ge-exec2"].cores == 0  # no open queue
    assert got["ge-exec1"].state == "busy"


def test_a_disabled_host_is_ours_only_in_the_marker_group() -> None:
    text = fixture("qhost_q_up.xml").replace("name='state_string'></queuevalue>", "name='state_string'>d</queuevalue>")
    theirs = nodes(text, "qhost_j_up.xml")
    assert theirs["ge-exec1"].state == "draining" and not theirs["ge-exec1"].reason.startswith(DRAIN_REASON_PREFIX)
    ours = nodes(text, "qhost_j_up.xml", drained="group_name @ge_drained\nhostlist ge-exec1\n")
    assert ours["ge-exec1"].reason.startswith(DRAIN_REASON_PREFIX)
    assert not ours["ge-exec2"].reason.startswith(DRAIN_REASON_PREFIX)


def test_unknown_unreachable_and_never_started_hosts() -> None:
    got = nodes("qhost_q_host_killed.xml", "qhost_j_host_killed.xml")
    assert (got["ge-exec2"].state, got["ge-exec2"].jobs) == ("down", ("14", "15"))  # killed, jobs stay 'r'
    assert got["ge-placeholder"].state == "unknown"  # registered, execd never started
    assert got["ge-exec1"].state == "idle"


def test_dcaas_queues_give_the_resource_features() -> None:
    got = nodes(fixture("qhost_q_up.xml").replace("small.q", "ge_small.q"), "qhost_j_up.xml", cluster="ge")
    assert got["ge-exec1"].features == frozenset({"dcaas", "dcaas_small"})


# --- refusing what cannot be read whole ---------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not whole XML"),
        (fixture("qstat_u_all_r_s_r.xml")[:-40], "not whole XML"),
        (fixture("qstat_u_all_r_s_r.xml").replace("<state>r</state>", "<state>rX</state>", 1), "job state"),
        (fixture("qstat_u_all_r_s_r.xml").replace("<slots>2</slots>", "<slots>two</slots>"), "<slots>"),
        (fixture("qstat_u_all_r_s_r.xml").replace("<queue_name>small.q@ge-exec2</queue_name>", "", 1), "queue_name"),
        (fixture("qstat_u_all_r_s_r.xml").replace("<JB_job_number>12</JB_job_number>", ""), "JB_job_number"),
        (fixture("qstat_u_all_r_s_p.xml").replace("  <queue_info>\n  </queue_info>\n", ""), "<queue_info> sections"),
        (fixture("qstat_u_all_r_s_p.xml").replace("<tasks>2,3</tasks>", "<tasks>3-1</tasks>"), "tasks"),
        (fixture("qstat_u_all_r_s_p.xml").replace('state="pending"', 'state="running"', 1), "state="),
        (fixture("qstat_u_all_r_s_p.xml").replace("512M", "lots"), "h_vmem"),
    ],
)
def test_malformed_job_answers_are_refused(text: str, match: str) -> None:
    with pytest.raises(CommandError, match=match):
        manager({QSTAT: text}).jobs()


@pytest.mark.parametrize(
    ("q", "j", "match"),
    [
        (
            fixture("qhost_q_up.xml").replace("name='state_string'></", "name='state_string'>x</", 1),
            "qhost_j_up.xml",
            "queue state",
        ),
        (
            fixture("qhost_q_up.xml").replace("name='slots_used'>2<", "name='slots_used'>-<", 1),
            "qhost_j_up.xml",
            "slots_used",
        ),
        (
            fixture("qhost_q_up.xml").replace("<hostvalue name='num_proc'>2</hostvalue>", "", 1),
            "qhost_j_up.xml",
            "num_proc",
        ),
        ("qhost_q_host_killed.xml", "qhost_j_up.xml", "lists no host"),
        ("qhost_q_up.xml", "qhost_j_host_killed.xml", "not in the qhost -q answer"),
        ("qhost_q_up.xml", fixture("qhost_j_up.xml").replace("<job name='12'>", "<job name='x'>"), "job number"),
    ],
)
def test_malformed_host_answers_are_refused(q: str, j: str, match: str) -> None:
    with pytest.raises(CommandError, match=match):
        nodes(q, j)


# --- changing ----------------------------------------------------------------


def test_drain_marks_then_disables_and_resume_undoes_both() -> None:
    ge = manager(
        {
            ("qconf", "-aattr", "hostgroup", "hostlist", "ge-small-0a1b2c", "@ge_drained"): "",
            ("qmod", "-d", "*@ge-small-0a1b2c"): "",
            ("qmod", "-e", "*@ge-small-0a1b2c"): "",
            ("qconf", "-dattr", "hostgroup", "hostlist", "ge-small-0a1b2c", "@ge_drained"): "",
        }
    )
    ge.drain("ge-small-0a1b2c", "idle 600 s")
    ge.resume("ge-small-0a1b2c")
    assert ge.runner.calls == [
        ["qconf", "-aattr", "hostgroup", "hostlist", "ge-small-0a1b2c", "@ge_drained"],
        ["qmod", "-d", "*@ge-small-0a1b2c"],
        ["qmod", "-e", "*@ge-small-0a1b2c"],
        ["qconf", "-dattr", "hostgroup", "hostlist", "ge-small-0a1b2c", "@ge_drained"],
    ]
    for bad in ("ge-*", "a,b", "", "x y"):
        with pytest.raises(ValueError, match="single Grid Engine host name"):
            ge.drain(bad, "r")


def test_remove_waits_while_jobs_run() -> None:
    ge = manager({QHOST_QUEUES: "qhost_q_up.xml", QHOST_JOBS: "qhost_j_up.xml"})
    ge.remove("ge-exec1")  # jobs 11 and 13.1 run there: not yet, nothing changed
    assert ge.runner.calls == [list(QHOST_QUEUES), list(QHOST_JOBS)]
    ge.remove("ge-gone")  # not listed: nothing to do
    assert all(call[:2] != ["qconf", "-de"] for call in ge.runner.calls)


def idle_hosts() -> str:
    return fixture("qhost_q_up.xml").replace("small.q", "ge_small.q").replace("'slots_used'>2<", "'slots_used'>0<")


def test_remove_leaves_the_groups_then_deletes_the_host() -> None:
    answers = {
        QHOST_QUEUES: idle_hosts(),
        QHOST_JOBS: _strip_jobs(fixture("qhost_j_up.xml")),
        ("qconf", "-dattr", "hostgroup", "hostlist", "ge-exec1", "@ge_small"): "",
        ("qconf", "-dattr", "hostgroup", "hostlist", "ge-exec1", "@ge_drained"): CommandError(
            ["qconf"], 1, "", 'Host group "@ge_drained" does not exist'
        ),
        ("qconf", "-de", "ge-exec1"): "removed",
    }
    ge = manager(answers)
    ge.remove("ge-exec1")
    assert ge.runner.calls[2:] == [
        ["qconf", "-dattr", "hostgroup", "hostlist", "ge-exec1", "@ge_small"],
        ["qconf", "-dattr", "hostgroup", "hostlist", "ge-exec1", "@ge_drained"],
        ["qconf", "-de", "ge-exec1"],
    ]


def _strip_jobs(text: str) -> str:
    root = ET.fromstring(text)
    for host in root:
        for job in host.findall("job"):
            host.remove(job)
    return ET.tostring(root, encoding="unicode")


def test_a_refused_delete_is_not_yet_only_when_a_job_started() -> None:
    refused = CommandError(["qconf", "-de", "ge-exec1"], 1, "", "denied: host has running jobs")
    base = {
        QHOST_QUEUES: idle_hosts(),
        ("qconf", "-dattr", "hostgroup", "hostlist", "ge-exec1", "@ge_small"): "",
        ("qconf", "-dattr", "hostgroup", "hostlist", "ge-exec1", "@ge_drained"): "",
        ("qconf", "-de", "ge-exec1"): refused,
    }
    started = manager({**base, QHOST_JOBS: [_strip_jobs(fixture("qhost_j_up.xml")), fixture("qhost_j_up.xml")]})
    started.remove("ge-exec1")  # a job arrived meanwhile: not yet
    still_free = manager({**base, QHOST_JOBS: _strip_jobs(fixture("qhost_j_up.xml"))})
    with pytest.raises(CommandError, match="denied"):
        still_free.remove("ge-exec1")


RES = Resource(name="small", flavor="f", image="i", cores=2, memory_mb=2048, priority=10)
TENANT = Resource(name="chem", flavor="f", image="i", cores=4, memory_mb=4096, accounts=("chem",), priority=10)


def test_admit_creates_what_is_missing_and_adds_the_host() -> None:
    host = "ge-chem-0a1b2c"
    ge = manager(
        {
            ("getent", "hosts", host): "10.88.0.7      ge-chem-0a1b2c\n",
            ("qconf", "-sprjl"): CommandError(["qconf"], 1, "no project list defined\n", ""),
            ("qconf", "-shgrpl"): "@allhosts\n",
            ("qconf", "-sql"): "all.q\n",
            ("sh", "-c", 'f=$(mktemp) && cat > "$f" && qconf -Aprj "$f"; rc=$?; rm -f "$f"; exit $rc'): "",
            ("sh", "-c", 'f=$(mktemp) && cat > "$f" && qconf -Ahgrp "$f"; rc=$?; rm -f "$f"; exit $rc'): "",
            ("sh", "-c", 'f=$(mktemp) && cat > "$f" && qconf -Aq "$f"; rc=$?; rm -f "$f"; exit $rc'): "",
            ("sh", "-c", 'f=$(mktemp) && cat > "$f" && qconf -Ae "$f"; rc=$?; rm -f "$f"; exit $rc'): "",
            ("qconf", "-aattr", "hostgroup", "hostlist", host, "@ge_chem"): "",
        },
        {"parallel_environments": ["ge_mpi"]},
    )
    ge.admit(TENANT, host, "10.88.0.7")
    files = {
        call[2].split("qconf ")[1].split(" ")[0]: text for call, text in zip(ge.runner.calls, ge.runner.stdin) if text
    }
    assert files["-Aprj"].startswith("name chem\n")
    assert (
        "group_name @ge_chem\nhostlist NONE\n" in ge.runner.stdin
        and "group_name @ge_drained\nhostlist NONE\n" in ge.runner.stdin
    )
    queue = dict(line.split(" ", 1) for line in files["-Aq"].splitlines())
    assert queue["qname"] == "ge_chem.q" and queue["hostlist"] == "@ge_chem" and queue["slots"] == "4"
    assert queue["projects"] == "chem" and queue["pe_list"] == "ge_mpi" and queue["load_thresholds"] == "NONE"
    assert files["-Ae"].startswith(f"hostname {host}\n")
    assert ge.runner.calls[-1] == ["qconf", "-aattr", "hostgroup", "hostlist", host, "@ge_chem"]


def test_admit_waits_until_the_name_resolves_on_the_qmaster() -> None:
    # qmaster caches a failed lookup: adding the host before its name
    # resolves would keep its execd out.
    host = "ge-chem-0a1b2c"
    ge = manager({("getent", "hosts", host): ""})
    ge.admit(TENANT, host, "10.88.0.7")
    assert ge.runner.calls == [["getent", "hosts", host]]


def test_tenant_queues_sort_before_shared_ones() -> None:
    ge = manager({})
    seq = {r.name: int(dict(x.split(" ", 1) for x in ge.queue_config(r).splitlines())["seq_no"]) for r in (RES, TENANT)}
    assert seq["chem"] < seq["small"]
    assert "projects NONE\n" in ge.queue_config(RES)


def test_join_config_configures_execd_only_and_needs_the_qmaster() -> None:
    ge = manager({}, {"qmaster": "head"})
    parts = ge.join_config(RES, "ge-small-0a1b2c")
    files = {f["path"]: f["content"] for f in parts["write_files"]}
    assert files["/var/lib/gridengine/default/common/act_qmaster"] == "head\n"
    assert "SGE_START_MASTERD=no\n" in files["/etc/default/gridengine"]
    assert "SGE_START_EXECD=yes\n" in files["/etc/default/gridengine"]
    assert parts["runcmd"][-1] == ["systemctl", "enable", "--now", "gridengine-exec"]
    assert "getent hosts head" in parts["runcmd"][0][2] and "getent hosts ge-small-0a1b2c" in parts["runcmd"][0][2]
    assert ge.runner.calls == []
    with pytest.raises(GridEngineConfigError, match=r"wlm\.options\.qmaster"):
        manager({}).join_config(RES, "ge-small-0a1b2c")
    with pytest.raises(GridEngineConfigError, match=r"wlm\.options\.qmaster"):
        manager({}, {"qmaster": "head; rm -rf /"}).join_config(RES, "ge-small-0a1b2c")


def test_registered_without_cloud_nodes() -> None:
    assert registry.adapter("gridengine") is GridEngineManager
    with pytest.raises(ValueError, match=r"wlm\.nodes: gridengine has no cloud nodes"):
        registry.make("gridengine", Runner(), {}, "c", cloud_nodes=True)


# --- fuzz: mutated real XML gives the same list or CommandError -------------------

JOB_ANSWERS = [
    "qstat_u_all_r_s_p_pending_eqw.xml",
    "qstat_u_all_r_s_r.xml",
    "qstat_u_all_r_array_pending.xml",
    "qstat_u_all_rescheduled_Rq.xml",
]
# Fields that every record must have, and junk that no Grid Engine prints there.
REQUIRED_JOB_FIELDS = ("JB_job_number", "state", "slots")
# Fields read when present: junk there is refused too (dropping them is a valid, different answer).
READ_JOB_FIELDS = ("tasks", "hard_request", "JB_submission_time")
READ_COMPLEXES = ("h_vmem", "mem_free", "h_rt")  # other requests are echoed in a reason, not read


def _required(record: ET.Element, field: ET.Element) -> bool:
    if record.tag == "job_list":
        return field.tag in REQUIRED_JOB_FIELDS or (field.tag == "queue_name" and record.get("state") == "running")
    if record.tag == "host":
        return field.get("name") in ("num_proc", "load_avg")
    return field.get("name") in ("slots", "slots_used", "state_string")


JUNK = ["", "-1", "1.5", "abc", "9" * 25, "\uff11", "r?", "qw x", "<", "&amp;", " "]


def _mutations(text: str, data: st.DataObject) -> str:
    kind = data.draw(st.sampled_from(["truncate", "insert", "drop", "junk"]))
    if kind == "truncate":
        return text[: data.draw(st.integers(0, len(text.rstrip()) - 1))]
    if kind == "insert":
        at = data.draw(st.integers(0, len(text)))
        return text[:at] + data.draw(st.sampled_from(["<", "&", "</job_list>", "<x>", "\x00", "]]>", "<?"])) + text[at:]
    root = ET.fromstring(text)
    records = [el for el in root.iter() if el.tag in ("job_list", "queue", "host") and el.get("name") != "global"]
    record = data.draw(st.sampled_from(records))
    required = [c for c in record if _required(record, c)]
    read = [c for c in record if c.tag in READ_JOB_FIELDS and c.get("name", "h_vmem") in READ_COMPLEXES]
    field = data.draw(st.sampled_from(required + read if kind == "junk" else required))
    if kind == "drop":
        record.remove(field)
    else:
        # 1.5 (bytes) is a memory value Grid Engine accepts: junk only where it is read as a count.
        junk = data.draw(st.sampled_from(JUNK if field in required else [j for j in JUNK if j != "1.5"]))
        field.text = "?" if field.get("name") == "state_string" and not junk.strip() else junk
    return "<?xml version='1.0'?>\n" + ET.tostring(root, encoding="unicode")


@FUZZ
@given(st.sampled_from(JOB_ANSWERS), st.data())
def test_fuzzed_job_answers_are_read_whole_or_refused(name: str, data: st.DataObject) -> None:
    text = fixture(name)
    expected = manager({QSTAT: text}).jobs()
    mutated = _mutations(text, data)
    try:
        got = manager({QSTAT: mutated}).jobs()
    except CommandError:
        return
    assert got == expected, "a mutated answer was read as a different job list"


@FUZZ
@given(
    st.sampled_from([("qhost_q_up.xml", "qhost_j_up.xml"), ("qhost_q_host_killed.xml", "qhost_j_host_killed.xml")]),
    st.booleans(),
    st.data(),
)
def test_fuzzed_host_answers_are_read_whole_or_refused(pair, mutate_jobs: bool, data: st.DataObject) -> None:
    q, j = fixture(pair[0]), fixture(pair[1])
    expected = nodes(q, j)
    if mutate_jobs:
        kind = data.draw(st.sampled_from(["truncate", "insert"]))
        at = data.draw(st.integers(0, len(j.rstrip()) - 1))
        j = j[:at] if kind == "truncate" else j[:at] + "<" + j[at:]
    else:
        q = _mutations(q, data)
    try:
        got = nodes(q, j)
    except CommandError:
        return
    assert got == expected, "a mutated answer was read as a different host list"
