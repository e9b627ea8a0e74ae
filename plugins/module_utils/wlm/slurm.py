# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slurm adapter: dynamic nodes (``slurmd -Z``) joining a configless slurmctld.

Private to the dcaas.cluster collection; its API may change without notice.
Standard library only.

What it runs, all through the Runner (tests replay real captured output):

- ``squeue --json`` and ``sinfo --json``: Slurm 22.05 serialises them with
  its openapi/v0.0.38 plugin (Debian: slurm-wlm-basic-plugins), so no text
  format has to be guessed at; reasons with blanks and commas arrive intact.
  The 22.05 ``scontrol`` has no ``--json``. The readers also accept the
  shapes newer Slurm prints (numbers as ``{"set", "infinite", "number"}``,
  states as lists), which cost a few lines and keep an upgrade from
  silently misreading the queue. An answer they cannot read whole, such
  as Slurm 24.11's ``sinfo --json`` (no per-node list), is refused with
  CommandError, never read as fewer nodes or jobs.
- ``scontrol update NodeName=... State=DRAIN|RESUME [Reason=...]``,
  ``scontrol update NodeName=... NodeAddr=...`` and
  ``scontrol delete NodeName=...``.

Workers join with the user-data from :meth:`SlurmManager.join_config`: the
munge key (read from ``options['munge_key_file']``) and
``/etc/default/slurmd`` for the dcaas worker image's slurmd unit. See
docs/images.md for what Slurm 22.05 does with dynamic nodes.
"""

from __future__ import annotations

import base64
import json
import re
import reprlib
import shlex
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.hostlist import HostlistError, expand
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Job, Resource, WlmNode, WlmState
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.arrays import array_tasks
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import Capability, WorkloadManager

SQUEUE = ("squeue", "--json")
SINFO = ("sinfo", "--json")
# The daemon's cheap check between passes: one id per line, no JSON.
SQUEUE_PENDING = ("squeue", "--noheader", "--states=PENDING", "--format=%i")
# With cloud nodes Slurm places a job on powered-down nodes at once: it is
# CONFIGURING, not PENDING, while they boot.
SQUEUE_WAITING = ("squeue", "--noheader", "--states=PENDING,CONFIGURING", "--format=%i")
# Where and when Slurm's scheduler plans to start each pending job. The
# 22.05 JSON has the start time but not the nodes (SchedNodes); times as
# epoch seconds through SLURM_TIME_FORMAT.
SQUEUE_START = ("env", "SLURM_TIME_FORMAT=%s", "squeue", "--noheader", "--states=PENDING", "--format=%i|%S|%Y")

# Slurm's markers for "not set" and "unlimited" in 32- and 64-bit fields.
_NO_VALUES = frozenset({0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0xFFFFFFFFFFFFFFFF})

# Job states (squeue prints one word; flags such as COMPLETING replace the
# base state). Everything that still holds nodes counts as running, so the
# engine never deletes a node under a suspended or completing job.
RUNNING_STATES = frozenset(
    {"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING", "SIGNALING", "STOPPED", "STAGE_OUT"}
)
PENDING_STATES = frozenset({"PENDING", "REQUEUED"})
# Pending, but only a person can release them.
HELD_STATES = frozenset({"REQUEUE_HOLD", "RESV_DEL_HOLD", "SPECIAL_EXIT", "REQUEUE_FED"})
# Ended (REVOKED: a federated job that runs on a sibling cluster). A job
# whose state is in none of these sets fails the whole answer (_job_states).
FINISHED_STATES = frozenset(
    {
        "COMPLETED",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "REVOKED",
    }
)
_JOB_STATES = RUNNING_STATES | PENDING_STATES | HELD_STATES | FINISHED_STATES

# Pending reasons that more nodes can cure. "PartitionConfig" and
# "PartitionNodeLimit" are what a partition of dynamic nodes reports while it
# has fewer nodes than the job asks for; "ReqNodeNotAvail" is what a job gets
# when only a FUTURE placeholder node carries its feature.
CAPACITY_REASONS = frozenset(
    {
        "None",
        "Priority",
        "Resources",
        "ReqNodeNotAvail",
        "Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved_for_jobs_in_higher_priority_partitions",
        "NodeDown",
        "PartitionConfig",
        "PartitionNodeLimit",
        "Prolog",
        "Cleaning",
        "SchedDefault",
        "PowerUpNodeTimeout",
    }
)
# Reasons nodes cannot cure: the job waits for time, a person, another job,
# or a limit. Any reason in neither set is treated like these (launching
# nodes that then sit idle costs money; a job left waiting is visible with
# its reason in the engine's report).
WAIT_REASONS = frozenset(
    {
        "Dependency",
        "DependencyNeverSatisfied",
        "JobHeldUser",
        "JobHeldAdmin",
        "BeginTime",
        "PartitionDown",
        "PartitionInactive",
        "PartitionTimeLimit",
        "Reservation",
        "ReservationDeleted",
        "Licenses",
        "BadConstraints",
        "InvalidAccount",
        "InvalidQOS",
        "AccountingPolicy",
        "JobArrayTaskLimit",
        "DeadLine",
        "FrontEndDown",
        "BurstBufferResources",
        "BurstBufferStageIn",
        "BurstBufferOperation",
        "FedJobLock",
        "JobHoldMaxRequeue",
        "launch failed requeued held",
    }
)
# Association and QOS limits: AssocGrpCpuLimit, QOSMaxWallDurationPerJobLimit, ...
WAIT_REASON_PREFIXES = ("Assoc", "QOS", "MaxJobs", "MaxCpu", "MaxNode", "MaxMem", "MaxSubmit")

# Node states (base state and flags, upper case) that mean "not usable".
# The power-saving flags of cloud nodes come first (node_state); POWER_DOWN
# alone only says a power-down is queued behind the node's jobs.
_DOWN = frozenset({"DOWN", "NOT_RESPONDING", "FAIL", "ERROR"})
_FAILED = frozenset({"DOWN", "FAIL"})
_BUSY = frozenset({"ALLOCATED", "MIXED", "COMPLETING"})

# Names and words that end up on slurmd's command line through a shell
# (the worker unit evaluates SLURMD_OPTIONS) must be plain tokens.
_NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:/+-]+$")
_SIMPLE_CONSTRAINT_RE = re.compile(r"^[A-Za-z0-9_.:+-]+(?:[&,][A-Za-z0-9_.:+-]+)*$")


class SlurmConfigError(ValueError):
    """The adapter's options cannot produce a worker's join configuration."""


# Slurm's numeric fields are at most 64 bits wide, and none that the
# readers use is negative: anything outside is not a value Slurm printed.
_MAX_NUMBER = 2**64
_DIGITS_RE = re.compile(r"[0-9]{1,20}")

# A node's base state: 22.05 prints it alone in 'state' (flags apart, in
# 'state_flags'), newer Slurm first in the 'state' list. A state without one
# says nothing about whether the node has jobs.
_NODE_BASE_STATES = frozenset({"UNKNOWN", "DOWN", "IDLE", "ALLOCATED", "ERROR", "MIXED", "FUTURE"})

# Values echoed in messages: short, one line, and safe for any JSON tree
# (depth-limited, so a deeply nested value cannot overflow the stack).
_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 100
_SHOW.maxlevel = 2


def _show(value: Any) -> str:
    return _SHOW.repr(value)


def _number(value: Any) -> int | None:
    """An integer field: None when unset or unlimited (22.05 plain ints, newer {set, infinite, number}).

    Raises ValueError for what Slurm would not print as a number (a word,
    true/false, a fraction, NaN or inf, a list, a nested object, a
    negative or more than 64-bit value); _Record.number says what then.
    """
    if isinstance(value, dict):
        is_set, infinite = value.get("set", True), value.get("infinite", False)
        if not isinstance(is_set, bool) or not isinstance(infinite, bool) or "number" not in value:
            raise ValueError(f"is not a number or a {{set, infinite, number}} object: {_show(value)}")
        if not is_set or infinite:
            return None
        value = value["number"]
        if isinstance(value, (dict, list)):
            raise ValueError(f"holds {_show(value)} where a number belongs")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (isinstance(value, str) and _DIGITS_RE.fullmatch(value)):
        number = int(value)
    else:
        raise ValueError(f"is not a whole number: {_show(value)}")
    if number < 0:
        raise ValueError(f"is negative: {number}")
    if number >= _MAX_NUMBER:
        raise ValueError("is more than 64 bits wide")
    return None if number in _NO_VALUES else number


def _words(value: Any) -> set[str]:
    """State words in upper case, from 'idle', 'IDLE+DRAIN' or ['IDLE', 'DRAIN'].

    Raises ValueError for any other shape.
    """
    if value is None:
        return set()
    if isinstance(value, str):
        items = value.split("+")
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    else:
        raise ValueError(f"is not a state word or a list of them: {_show(value)}")
    return {item.strip().upper() for item in items if item.strip()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != "(null)" else None


def _list(value: Any) -> list[str]:
    text = _text(value)
    return [part for part in text.split(",") if part] if text else []


class _Record:
    """One record of a JSON answer, read field by field.

    A field of the wrong type fails the whole answer (CommandError naming
    the command, the record and the field): a record read halfway, or
    skipped, could make a busy node look free or a node look gone. A field
    that is missing or null reads as unset, as Slurm prints unset fields.

    Numbers follow the same rule for every field: one that is no number
    fails the answer, also where a wrong value would only cost a launch (a
    job's cpus), since it means the answer is not in the format this code
    reads. Unset (missing, null, ``set: false``, Slurm's NO_VAL) is None;
    where that would be read as 0 and make a busy node look free
    (``alloc_cpus``), or a record could not be named (``job_id``), the
    caller asks for ``required`` and unset fails the answer too.
    """

    def __init__(self, argv: tuple[str, ...], where: str, rec: Any):
        self.argv = argv
        self.where = where
        if not isinstance(rec, dict):
            raise self.error(f"is {type(rec).__name__} {_show(rec)}, not an object")
        self.rec = rec

    def error(self, problem: str) -> CommandError:
        return CommandError(self.argv, 0, "", f"{self.where} {problem}")

    def number(self, key: str, required: bool = False) -> int | None:
        try:
            number = _number(self.rec.get(key))
        except ValueError as exc:
            raise self.error(f"field {key!r} {exc}") from None
        if number is None and required:
            raise self.error(f"has no {key!r} (got {_show(self.rec.get(key))})")
        return number

    def text(self, key: str) -> str | None:
        value = self.rec.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(f"field {key!r} is not text: {_show(value)}")
        return _text(value)

    def words(self, key: str) -> set[str]:
        try:
            return _words(self.rec.get(key))
        except ValueError as exc:
            raise self.error(f"field {key!r} {exc}") from None


def _records(argv: tuple[str, ...], data: dict, key: str, why_missing: str = "") -> list[_Record]:
    """The list ``data[key]`` as records; an empty list is an empty cluster, anything but a list an error."""
    records = data.get(key)
    if not isinstance(records, list):
        got = f"its keys: {_show(sorted(data))}" if key not in data else f"{type(records).__name__} {_show(records)}"
        raise CommandError(argv, 0, "", f"the answer has no {key!r} list (got {got}){why_missing}")
    return [_Record(argv, f"{key}[{i}]", rec) for i, rec in enumerate(records)]


def parse_constraint(constraint: str | None) -> tuple[frozenset[str], str | None]:
    """Features a job requires, from ``-C``; and a note when the constraint is more than a list.

    ``a&b`` and ``a,b`` (an older spelling of AND) are understood; OR,
    brackets, counts and the like are not: the note says so and the caller
    keeps such a job out of the plan rather than launching the wrong nodes.
    """
    text = _text(constraint)
    if not text:
        return frozenset(), None
    if _SIMPLE_CONSTRAINT_RE.match(text):
        return frozenset(re.split(r"[&,]", text)), None
    return frozenset(), f"constraint {_show(text)} is not a plain '&' list of features; dcaas cannot plan nodes for it"


# Tasks of one pending array record reported one by one; Slurm allows arrays
# of millions, and no scaling decision needs more than this many.
def eligibility(reason: str | None) -> tuple[bool, str | None]:
    """Whether more nodes could let a pending job with this Slurm reason start, and a note if unsure."""
    reason = reason or "None"
    if reason in CAPACITY_REASONS:
        return True, None
    if reason in WAIT_REASONS or reason.startswith(WAIT_REASON_PREFIXES):
        return False, None
    return False, "a reason dcaas does not know more nodes can cure"


def _check_name(node: str) -> str:
    # A host list such as n[1-9] would act on many nodes at once.
    if not isinstance(node, str) or not _NODE_NAME_RE.match(node):
        raise ValueError(f"{node!r} is not a single Slurm node name")
    return node


def _load(argv: tuple[str, ...], text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            argv,
            0,
            "",
            f"output is not JSON ({exc}); this Slurm build needs the serializer/json and "
            "openapi/v0.0.38 plugins (Debian: slurm-wlm-basic-plugins)",
        ) from None
    except (ValueError, RecursionError) as exc:
        # JSON that Python refuses: numbers thousands of digits long, nesting
        # thousands deep. Slurm prints neither.
        raise CommandError(argv, 0, "", f"output is JSON no Slurm prints: {_show(str(exc))}") from None
    if not isinstance(data, dict):
        raise CommandError(argv, 0, "", f"expected a JSON object, got {type(data).__name__}")
    errors = data.get("errors")
    if errors is None:
        errors = []
    if not isinstance(errors, list):
        raise CommandError(argv, 0, "", f"the answer's 'errors' is {type(errors).__name__} {_show(errors)}, not a list")
    if errors:
        # Whatever its shape, an entry there means Slurm did not answer in full.
        first = errors[0]
        detail = (first.get("description") or first.get("error")) if isinstance(first, dict) else None
        raise CommandError(argv, 0, "", f"Slurm reported {len(errors)} error(s), the first: {_show(detail or first)}")
    return data


class SlurmManager(WorkloadManager):
    """Slurm 22.05+ with dynamic nodes.

    ``options``:
      ``conf_server``: where workers fetch slurm.conf (``head`` or ``head:6817``), required to launch;
      ``munge_key_file``: path of the cluster's munge key on the engine's host, required to launch;
      ``memory_reserve_mb``: subtracted from a flavor's memory for RealMemory (default 0): on VMs the
      kernel keeps some, and a node registering with less than RealMemory is drained by slurmctld.
    ``resource.wlm_options['slurm_node_conf']``: extra node parameters for ``slurmd --conf``
    (``{"Weight": 10, "Gres": "gpu:1"}``).
    """

    name = "slurm"
    # Cloud nodes: slurm.conf lists every node (State=CLOUD) and Slurm's
    # power saving marks the ones it wants up; see docs/slurm.md.
    capabilities = frozenset(
        {Capability.CLOUD_NODES, Capability.PENDING_WATCH, Capability.ADDRESS_UPDATES, Capability.FEATURES}
    )
    OPTION_SPEC = {
        "conf_server": {"type": "text", "what": "the Slurm head's name, such as head or head:6817"},
        "munge_key_file": {"type": "path", "example": "/etc/munge/munge.key"},
        "memory_reserve_mb": {"type": "int", "default": 0, "min": 0, "max": 1024 * 1024, "unit": " MiB"},
    }
    # Stays under resources[].options in the config file; the config loader
    # hands it to the adapter as Resource.wlm_options.
    RESOURCE_OPTION_SPEC = {"slurm_node_conf": {"type": "dict"}}

    # --- reading ---------------------------------------------------------
    def jobs(self) -> list[Job]:
        """Pending and running jobs; running first, then pending in Slurm's priority order.

        CommandError for an answer that is not a whole, readable job list: a
        running job left out would leave its nodes looking free.
        """
        data = _load(SQUEUE, self.runner.run(list(SQUEUE)))
        records = _records(SQUEUE, data, "jobs")
        for rec in records:
            rec.where = f"job {_job_id(rec)} ({rec.where})"
        # An array's %limit caps its running tasks; the pending tasks that fit
        # under the cap are the only ones more nodes would start.
        budget: dict[int, int] = {}
        for rec in records:
            array_id, limit = rec.number("array_job_id"), rec.number("array_max_tasks")
            if array_id and limit:
                budget.setdefault(array_id, limit)
                if _job_states(rec) & RUNNING_STATES:
                    budget[array_id] -= 1
        running: list[tuple[tuple, Job]] = []
        pending: list[tuple[tuple, Job]] = []
        # Single tasks before the records of not yet started tasks: they are
        # the ones Slurm starts first when the %limit has room.
        for rec in sorted(records, key=lambda r: (_is_array_rest(r), _id_key(_job_id(r)))):
            for job in self._jobs_of(rec, budget):
                if job.pending:
                    order = (-(rec.number("priority") or 0), job.submit_time or 0.0, _id_key(job.id))
                    pending.append((order, job))
                else:
                    running.append((_id_key(job.id), job))
        running.sort(key=lambda item: item[0])
        pending.sort(key=lambda item: item[0])
        queue = [job for _key, job in pending]
        if self.cloud_nodes and queue:
            plans = self.planned_starts()
            queue = [
                replace(job, start_time=plans[job.id][0], planned_nodes=plans[job.id][1]) if job.id in plans else job
                for job in queue
            ]
        return [job for _key, job in running] + queue

    def planned_starts(self) -> dict[str, tuple[float, tuple[str, ...]]]:
        """job id -> (planned start, planned nodes) of the pending jobs Slurm has planned.

        The first task of a pending array record carries the record's plan.
        A line that cannot be read is left out, and its job counts as not
        planned, like Slurm's own N/A: a plan only powers off nodes up
        early and lets idle nodes power down until the planned start, so a
        lost plan costs time, never a node with a job on it.
        """
        plans: dict[str, tuple[float, tuple[str, ...]]] = {}
        for line in self.runner.run(list(SQUEUE_START)).splitlines():
            parts = line.strip().split("|")
            if len(parts) != 3:
                continue
            job_id, start, nodes = parts
            if not _DIGITS_RE.fullmatch(start) or int(start) <= 0:
                continue  # N/A: not planned (yet)
            head, _sep, spec = job_id.partition("_[")
            if spec:
                try:
                    tasks = array_tasks(spec.rstrip("]"))
                except ValueError:
                    continue
                job_id = f"{head}_{tasks[0]}" if tasks else head
            try:
                names = tuple(expand(_text(nodes)))
            except HostlistError:
                names = ()
            plans[job_id] = (float(start), names)
        return plans

    def pending_ids(self) -> frozenset[str]:
        """Pending job ids (``123``, ``120_[4-9]``) from squeue's plain output.

        With cloud nodes also the CONFIGURING ones: a job Slurm placed on
        nodes that are off waits for them in that state. Lines are taken as
        printed: the ids only wake the daemon early for new jobs
        (daemon.wait_for_work), so an odd line costs at most an early pass.
        """
        argv = SQUEUE_WAITING if self.cloud_nodes else SQUEUE_PENDING
        return frozenset(line.strip() for line in self.runner.run(list(argv)).splitlines() if line.strip())

    def _jobs_of(self, rec: _Record, budget: dict[int, int]) -> list[Job]:
        """The Job(s) one squeue record stands for: none, one, or one per pending array task."""
        states = _job_states(rec)
        if states & RUNNING_STATES:
            state = "running"
        elif states & (PENDING_STATES | HELD_STATES):
            state = "pending"
        else:
            return []  # completed, failed, cancelled, timed out...
        job_id = _job_id(rec)
        node_count = max(1, rec.number("node_count") or 1)
        cpus = rec.number("cpus") or 1
        per_task = (rec.number("tasks_per_node") or 0) * (rec.number("cpus_per_task") or 1)
        cores = max(-(-cpus // node_count), rec.number("minimum_cpus_per_node") or 0, per_task, 1)
        memory = rec.number("memory_per_node")
        if memory is None:
            per_cpu = rec.number("memory_per_cpu")
            memory = per_cpu * cores if per_cpu else 0
        limit = rec.number("time_limit")
        features, constraint_note = parse_constraint(rec.text("features"))
        submit = rec.number("submit_time")
        uid = rec.number("user_id")
        job = Job(
            id=job_id,
            state=state,
            cores=cores,
            memory_mb=memory,
            nodes=node_count,
            walltime_s=limit * 60 if limit else None,
            partitions=tuple(_list(rec.text("partition"))),
            account=rec.text("account"),
            features=features,
            user=rec.text("user_name") or (str(uid) if uid is not None else None),
            submit_time=float(submit) if submit else None,
        )
        if state == "running":
            # The node list decides which nodes are busy: one that cannot be
            # read, or is missing, must not make them look free.
            try:
                names = tuple(expand(rec.text("nodes")))
            except HostlistError as exc:
                raise rec.error(f"field 'nodes' cannot be read: {exc}") from None
            if not names:
                # Slurm keeps a job's node list to its end (finished jobs show it too).
                raise rec.error(f"is running but names no nodes ('nodes': {_show(rec.rec.get('nodes'))})")
            return [replace(job, node_names=names)]

        reason = rec.text("state_reason")
        eligible, note = eligibility(reason)
        if states & HELD_STATES:
            eligible, note = False, None
        required = rec.text("required_nodes")
        if required:
            # New workers get new names: they can never be the nodes it names.
            eligible, note = False, f"needs the named nodes {_show(required)}"
        if constraint_note:
            eligible, note = False, constraint_note
        job = replace(job, eligible=eligible, reason=f"{reason or 'None'}; {note}" if note else reason)

        array_id = rec.number("array_job_id")
        if not array_id:
            return [job]
        # A pending array record stands for every task it has not started.
        try:
            tasks = array_tasks(rec.text("array_task_string"))
        except ValueError as exc:
            raise rec.error(f"field 'array_task_string': {exc}") from None
        jobs = [replace(job, id=f"{array_id}_{task}") for task in tasks] if tasks else [job]
        for i, task_job in enumerate(jobs):
            if array_id in budget and task_job.eligible:
                if budget[array_id] > 0:
                    budget[array_id] -= 1
                else:
                    jobs[i] = replace(task_job, eligible=False, reason="JobArrayTaskLimit")
        return jobs

    def nodes(self) -> list[WlmNode]:
        """Every node slurmctld knows (FUTURE placeholders excluded), state normalised.

        CommandError for an answer that is not a whole, readable node list:
        a node left out would look gone, and the engine deletes the
        instance of a node that is gone.
        """
        data = _load(SINFO, self.runner.run(list(SINFO)))
        nodes = []
        seen = set()
        for rec in _records(SINFO, data, "nodes", _grouped_sinfo(data)):
            name = rec.text("name")
            if not name:
                raise rec.error(f"has no node name ('name': {_show(rec.rec.get('name'))})")
            if name in seen:
                raise rec.error(f"lists node {_show(name)} a second time")
            seen.add(name)
            rec.where = f"node {_show(name)} ({rec.where})"
            base = rec.words("state")
            if not base & _NODE_BASE_STATES:
                raise rec.error(f"has no node state dcaas knows ('state': {_show(rec.rec.get('state'))})")
            words = base | rec.words("state_flags")
            if "FUTURE" in words:
                continue
            # Required: with its count lost, a node running jobs could look free.
            cores_alloc = rec.number("alloc_cpus", required=True)
            last_busy = rec.number("last_busy")
            nodes.append(
                WlmNode(
                    name=name,
                    state=node_state(words, cores_alloc),
                    cores=rec.number("cpus") or 0,
                    cores_alloc=cores_alloc,
                    memory_mb=rec.number("real_memory") or 0,
                    reason=rec.text("reason"),
                    features=frozenset(_list(rec.text("features"))),
                    address=rec.text("address"),
                    last_busy=float(last_busy) if last_busy else None,
                )
            )
        return nodes

    # --- changing --------------------------------------------------------
    def drain(self, node: str, reason: str) -> None:
        """Drain; the reason carries the engine's prefix so an admin's drains stay apart."""
        reason = naming.drain_reason(reason)  # one line: Slurm stores it as given
        self.runner.run(["scontrol", "update", f"NodeName={_check_name(node)}", "State=DRAIN", f"Reason={reason}"])

    def resume(self, node: str) -> None:
        """Undrain; a node that is not drained (any more) is fine.

        slurmctld pings the node on RESUME: for a moment it is IDLE+NOT_RESPONDING.
        """
        try:
            self.runner.run(["scontrol", "update", f"NodeName={_check_name(node)}", "State=RESUME"])
        except CommandError as exc:
            # What scontrol says when there is nothing to resume.
            if "invalid node state specified" in (exc.stderr + exc.stdout).lower():
                return
            raise

    def remove(self, node: str) -> None:
        """``scontrol delete``: refused by slurmctld while the node has jobs; a node already gone is fine."""
        try:
            self.runner.run(["scontrol", "delete", f"NodeName={_check_name(node)}"])
        except CommandError as exc:
            if "invalid node name" in (exc.stderr + exc.stdout).lower():
                return
            raise

    def power_down(self, node: str, force: bool = False) -> None:
        """Power a cloud node down in Slurm: ``State=POWER_DOWN``, or ``POWER_DOWN_FORCE``.

        POWER_DOWN waits for the node's jobs: Slurm powers it down when they
        end. POWER_DOWN_FORCE requeues the jobs placed on it; the engine uses
        it only for a node that failed to boot or is down, whose jobs cannot
        run there. Slurm runs SuspendProgram, keeps the node POWERING_DOWN
        for SuspendTimeout, then lists it powered down (off).
        """
        state = "POWER_DOWN_FORCE" if force else "POWER_DOWN"
        self.runner.run(["scontrol", "update", f"NodeName={_check_name(node)}", f"State={state}"])

    def power_up(self, node: str) -> None:
        """``State=POWER_UP``: Slurm lists the node POWERING_UP and waits ResumeTimeout for it.

        Sent before starting a node Slurm placed no job on (``min``,
        pre-warm). Without it Slurm lists the node powered down until it
        registers, places jobs on it as on any off node, and the engine
        takes its booting instance for one Slurm powered down. Slurm powers
        up the nodes it placed jobs on itself; on one already powering up,
        POWER_UP would restart the wait, so the engine does not send it there.
        """
        self.runner.run(["scontrol", "update", f"NodeName={_check_name(node)}", "State=POWER_UP"])

    def cloud_nodes_hint(self) -> str:
        return "render slurm.conf with head_node_cloud_nodes: cloud (docs/engine-config.md, 'Cloud nodes')"

    def update_address(self, node: str, address: str) -> None:
        """Point slurmctld at a worker's new address.

        Slurm 22.05 keeps the address a dynamic node first registered from,
        also when the same slurmd registers again from a new one (a
        restarted container); until this is run, slurmctld cannot reach it.
        """
        if not _TOKEN_RE.match(address or ""):
            raise ValueError(f"{address!r} is not a host name or IP address")
        self.runner.run(["scontrol", "update", f"NodeName={_check_name(node)}", f"NodeAddr={address}"])

    # --- joining ---------------------------------------------------------
    def join_config(self, resource: Resource, node_name: str) -> dict:
        """cloud-init parts that make a worker image's slurmd join as ``node_name``.

        The munge key travels base64-encoded in write_files, 0400 munge:munge;
        errors name the key file, never its contents.
        """
        _check_name(node_name)
        server = self.options.get("conf_server")
        if not server or not _TOKEN_RE.match(str(server)):
            raise SlurmConfigError(
                "wlm.options.conf_server must name the Slurm head that workers fetch their configuration "
                f"from, such as 'head' or 'head:6817'; got {server!r}"
            )
        key_b64 = self._munge_key_b64()
        if self.cloud_nodes:
            # slurm.conf defines the node (State=CLOUD). -b: slurmd reports
            # the node booted when it starts; a container shares the host's
            # uptime, and Slurm keeps a node it powered up POWERING_UP until
            # the node boots after the request (measured on 22.05).
            argv = ["-b", "--conf-server", str(server), "-N", node_name]
            return self._join(key_b64, node_name, argv)
        features = self.node_features(resource)
        bad = [f for f in features if not _TOKEN_RE.match(f) or "," in f]
        if bad:
            raise SlurmConfigError(f"resource {resource.name!r}: feature(s) {bad} are not plain words")
        memory = resource.memory_mb - int(self.options.get("memory_reserve_mb") or 0)
        if memory <= 0:
            raise SlurmConfigError(
                f"resource {resource.name!r}: memory_mb={resource.memory_mb} leaves nothing after "
                f"wlm.options.memory_reserve_mb={self.options.get('memory_reserve_mb')}"
            )
        conf = {"Feature": ",".join(features), "CPUs": str(resource.cores), "RealMemory": str(memory)}
        for key, value in sorted((resource.wlm_options.get("slurm_node_conf") or {}).items()):
            if not (_TOKEN_RE.match(str(key)) and _TOKEN_RE.match(str(value))) or key.lower() in ("nodename",):
                raise SlurmConfigError(
                    f"resource {resource.name!r}: options.slurm_node_conf {key}={value!r} is not a plain "
                    "node parameter (NodeName is set by dcaas)"
                )
            conf[str(key)] = str(value)
        argv = [
            "-Z",
            "--conf-server",
            str(server),
            "-N",
            node_name,
            "--conf",
            " ".join(f"{k}={v}" for k, v in conf.items()),
        ]
        return self._join(key_b64, node_name, argv)

    def _join(self, key_b64: str, node_name: str, argv: list[str]) -> dict:
        # The worker unit runs `eval exec slurmd -D -s "$SLURMD_OPTIONS"`, so
        # shell quoting inside the value survives systemd's EnvironmentFile.
        options = " ".join(shlex.quote(a) for a in argv)
        return {
            "write_files": [
                {
                    "path": "/etc/munge/munge.key",
                    "content": key_b64,
                    "encoding": "b64",
                    "owner": "munge:munge",
                    "permissions": "0400",
                },
                {
                    "path": "/etc/default/slurmd",
                    "content": f"# Written by dcaas at launch: this node joins {self.cluster} as {node_name}.\n"
                    f'SLURMD_OPTIONS="{options}"\n',
                    "owner": "root:root",
                    "permissions": "0644",
                },
            ],
            "runcmd": [
                ["systemctl", "restart", "munge"],
                ["systemctl", "enable", "--now", "slurmd"],
            ],
        }

    def _munge_key_b64(self) -> str:
        path = self.options.get("munge_key_file")
        if not path:
            raise SlurmConfigError(
                "wlm.options.munge_key_file must name the cluster's munge key file (for example "
                "/etc/munge/munge.key on the head node); workers cannot authenticate without it"
            )
        try:
            with open(path, "rb") as fh:
                key = fh.read()
        except OSError as exc:
            # strerror only: the exception text could otherwise carry more than the path.
            raise SlurmConfigError(f"cannot read munge key file {path}: {exc.strerror}") from None
        if len(key) < 32:
            raise SlurmConfigError(f"munge key file {path} holds {len(key)} bytes; munged needs at least 32")
        return base64.b64encode(key).decode("ascii")


def node_state(words: Iterable[str], cores_alloc: int = 0) -> WlmState:
    """The WlmState of a node from its Slurm state words (base state and flags).

    Cloud nodes (State=CLOUD, power saving): POWERED_DOWN is off,
    POWERING_UP and POWERING_DOWN are themselves. A cloud node Slurm has
    placed jobs on while it was off is powering up (it is also
    NOT_RESPONDING until its slurmd registers). One that failed to come up
    within ResumeTimeout is DOWN and stays powered down: down. A DRAIN flag
    is draining while the node has jobs (ALLOCATED, MIXED, COMPLETING or
    cores allocated), drained once it has none.
    """
    words = set(words)
    if "POWERING_UP" in words:
        return WlmState.POWERING_UP
    if "POWERING_DOWN" in words:
        return WlmState.POWERING_DOWN
    if "POWERED_DOWN" in words:
        return WlmState.DOWN if words & _FAILED else WlmState.OFF
    if words & _DOWN:
        return WlmState.DOWN
    busy = bool(words & _BUSY) or cores_alloc > 0
    if "DRAIN" in words or "DRAINING" in words or "DRAINED" in words:
        return WlmState.DRAINING if busy else WlmState.DRAINED
    if busy:
        return WlmState.BUSY
    if "IDLE" in words:
        return WlmState.IDLE
    return WlmState.UNKNOWN


def _job_id(rec: _Record) -> str:
    """squeue's id: ``123``, or ``120_3`` for a task of array 120."""
    array_id, task = rec.number("array_job_id"), rec.number("array_task_id")
    if array_id and task is not None:
        return f"{array_id}_{task}"
    return str(rec.number("job_id", required=True))


def _job_states(rec: _Record) -> set[str]:
    """The record's job state words; at least one must be a state dcaas knows.

    A state made only of unknown words could be a running job's: read as
    finished, it would leave the job's nodes looking free.
    """
    states = rec.words("job_state")
    if not states & _JOB_STATES:
        raise rec.error(f"has no job state dcaas knows ('job_state': {_show(rec.rec.get('job_state'))})")
    return states


def _is_array_rest(rec: _Record) -> bool:
    return bool(rec.number("array_job_id")) and rec.number("array_task_id") is None


def _grouped_sinfo(data: dict) -> str:
    """Why an answer without 'nodes' may have come, when it has newer Slurm's grouped 'sinfo' list."""
    if "sinfo" not in data:
        return ""
    meta = data.get("meta")
    slurm = (meta.get("slurm") or meta.get("Slurm")) if isinstance(meta, dict) else None
    release = slurm.get("release") if isinstance(slurm, dict) else None
    printed_by = f"Slurm {_show(release)}" if release else "newer Slurm"
    return (
        f"; it has a 'sinfo' list instead, as {printed_by} prints it: nodes grouped, per-node data only in "
        "'scontrol show node --json', which this version of dcaas does not read yet "
        "(it reads the per-node 'nodes' list of Slurm 22.05)"
    )


def _id_key(job_id: str) -> tuple:
    head, _sep, task = job_id.partition("_")
    return (int(head) if head.isdigit() else 0, head, int(task) if task.isdigit() else -1)
