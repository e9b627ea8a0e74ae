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
  silently misreading the queue.
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
import itertools
import json
import math
import re
import shlex
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ansible_collections.dcaas.cluster.plugins.module_utils.hostlist import HostlistError, expand
from ansible_collections.dcaas.cluster.plugins.module_utils.model import DRAIN_REASON_PREFIX, Job, Resource, WlmNode
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import WorkloadManager

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


def _number(value: Any) -> int | None:
    """An integer field: None when unset or unlimited (22.05 plain ints, newer {set, infinite, number})."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return None if number in _NO_VALUES else number


def _words(value: Any) -> set[str]:
    """State words in upper case, from 'idle', 'IDLE+DRAIN' or ['IDLE', 'DRAIN']."""
    if value is None:
        return set()
    items = value if isinstance(value, list) else str(value).split("+")
    return {str(item).strip().upper() for item in items if str(item).strip()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != "(null)" else None


def _list(value: Any) -> list[str]:
    text = _text(value)
    return [part for part in text.split(",") if part] if text else []


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
    return frozenset(), f"constraint {text!r} is not a plain '&' list of features; dcaas cannot plan nodes for it"


# Tasks of one pending array record reported one by one; Slurm allows arrays
# of millions, and no scaling decision needs more than this many.
MAX_ARRAY_TASKS = 10_000


def array_tasks(spec: str | None) -> list[str]:
    """Task ids of a pending array record: '1-5,7,10-20:5%2' -> ['1', ..., '20'] (the %limit is dropped).

    At most MAX_ARRAY_TASKS, in the order listed.
    """
    text = _text(spec)
    if not text:
        return []
    text = text.split("%", 1)[0]
    tasks: list[str] = []
    for part in text.split(","):
        m = re.match(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$", part.strip())
        if not m:
            raise ValueError(f"array task list {spec!r}: cannot read {part!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        step = int(m.group(3)) if m.group(3) else 1
        room = MAX_ARRAY_TASKS - len(tasks)
        tasks.extend(str(n) for n in itertools.islice(range(lo, hi + 1, max(step, 1)), max(room, 0)))
    return tasks


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
    except ValueError as exc:
        raise CommandError(
            argv,
            0,
            "",
            f"output is not JSON ({exc}); this Slurm build needs the serializer/json and "
            "openapi/v0.0.38 plugins (Debian: slurm-wlm-basic-plugins)",
        ) from None
    if not isinstance(data, dict):
        raise CommandError(argv, 0, "", f"expected a JSON object, got {type(data).__name__}")
    errors = [e for e in data.get("errors") or [] if e]
    if errors:
        first = errors[0]
        detail = first.get("description") or first.get("error") if isinstance(first, dict) else str(first)
        raise CommandError(argv, 0, "", f"Slurm reported an error: {detail}")
    return data


class SlurmManager(WorkloadManager):
    """Slurm 22.05+ with dynamic nodes.

    ``options``:
      ``conf_server``: where workers fetch slurm.conf (``head`` or ``head:6817``), required to launch;
      ``munge_key_file``: path of the cluster's munge key on the engine's host, required to launch;
      ``memory_reserve_mb``: subtracted from a flavor's memory for RealMemory (default 0): on VMs the
      kernel keeps some, and a node registering with less than RealMemory is drained by slurmctld.
    ``resource.options['slurm_node_conf']``: extra node parameters for ``slurmd --conf``
    (``{"Weight": 10, "Gres": "gpu:1"}``).
    """

    name = "slurm"

    def __init__(self, runner, options: dict | None = None, cluster: str = "cluster", cloud_nodes: bool = False):
        super().__init__(runner, options, cluster)
        # wlm.nodes: cloud. slurm.conf lists every node (State=CLOUD) and
        # Slurm's power saving marks the ones it wants up; see docs/slurm.md.
        self.cloud_nodes = cloud_nodes

    # --- reading ---------------------------------------------------------
    def jobs(self) -> list[Job]:
        """Pending and running jobs; running first, then pending in Slurm's priority order."""
        data = _load(SQUEUE, self.runner.run(list(SQUEUE)))
        records = [r for r in data.get("jobs") or [] if isinstance(r, dict)]
        # An array's %limit caps its running tasks; the pending tasks that fit
        # under the cap are the only ones more nodes would start.
        budget: dict[int, int] = {}
        for rec in records:
            array_id, limit = _number(rec.get("array_job_id")), _number(rec.get("array_max_tasks"))
            if array_id and limit:
                budget.setdefault(array_id, limit)
                if _words(rec.get("job_state")) & RUNNING_STATES:
                    budget[array_id] -= 1
        running: list[tuple[tuple, Job]] = []
        pending: list[tuple[tuple, Job]] = []
        # Single tasks before the records of not yet started tasks: they are
        # the ones Slurm starts first when the %limit has room.
        for rec in sorted(records, key=lambda r: (_is_array_rest(r), _id_key(_job_id(r)))):
            for job in self._jobs_of(rec, budget):
                if job.pending:
                    order = (-(_number(rec.get("priority")) or 0), job.submit_time or 0.0, _id_key(job.id))
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
        """
        plans: dict[str, tuple[float, tuple[str, ...]]] = {}
        for line in self.runner.run(list(SQUEUE_START)).splitlines():
            parts = line.strip().split("|")
            if len(parts) != 3:
                continue
            job_id, start, nodes = parts
            if not start.isdigit() or int(start) <= 0:
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
        nodes that are off waits for them in that state.
        """
        argv = SQUEUE_WAITING if self.cloud_nodes else SQUEUE_PENDING
        return frozenset(line.strip() for line in self.runner.run(list(argv)).splitlines() if line.strip())

    def _jobs_of(self, rec: dict, budget: dict[int, int]) -> list[Job]:
        """The Job(s) one squeue record stands for: none, one, or one per pending array task."""
        states = _words(rec.get("job_state"))
        if states & RUNNING_STATES:
            state = "running"
        elif states & (PENDING_STATES | HELD_STATES):
            state = "pending"
        else:
            return []  # completed, failed, cancelled, timed out...
        job_id = _job_id(rec)
        node_count = max(1, _number(rec.get("node_count")) or 1)
        cpus = _number(rec.get("cpus")) or 1
        per_task = (_number(rec.get("tasks_per_node")) or 0) * (_number(rec.get("cpus_per_task")) or 1)
        cores = max(math.ceil(cpus / node_count), _number(rec.get("minimum_cpus_per_node")) or 0, per_task, 1)
        memory = _number(rec.get("memory_per_node"))
        if memory is None:
            per_cpu = _number(rec.get("memory_per_cpu"))
            memory = per_cpu * cores if per_cpu else 0
        limit = _number(rec.get("time_limit"))
        features, constraint_note = parse_constraint(rec.get("features"))
        submit = _number(rec.get("submit_time"))
        job = Job(
            id=job_id,
            state=state,
            cores=cores,
            memory_mb=memory,
            nodes=node_count,
            walltime_s=limit * 60 if limit else None,
            partitions=tuple(_list(rec.get("partition"))),
            account=_text(rec.get("account")),
            features=features,
            user=_text(rec.get("user_name")) or (str(rec["user_id"]) if rec.get("user_id") is not None else None),
            submit_time=float(submit) if submit else None,
        )
        if state == "running":
            try:
                return [replace(job, node_names=tuple(expand(_text(rec.get("nodes")))))]
            except HostlistError:
                # The node list decides which nodes are busy; an unreadable one
                # must not make them look free.
                raise CommandError(SQUEUE, 0, "", f"job {job_id}: unreadable node list {rec.get('nodes')!r}") from None

        reason = _text(rec.get("state_reason"))
        eligible, note = eligibility(reason)
        if states & HELD_STATES:
            eligible, note = False, None
        if _text(rec.get("required_nodes")):
            # New workers get new names: they can never be the nodes it names.
            eligible, note = False, f"needs the named nodes {rec['required_nodes']}"
        if constraint_note:
            eligible, note = False, constraint_note
        job = replace(job, eligible=eligible, reason=f"{reason or 'None'}; {note}" if note else reason)

        array_id = _number(rec.get("array_job_id"))
        if not array_id:
            return [job]
        # A pending array record stands for every task it has not started.
        try:
            tasks = array_tasks(rec.get("array_task_string"))
        except ValueError as exc:
            raise CommandError(SQUEUE, 0, "", f"job {job_id}: {exc}") from None
        jobs = [replace(job, id=f"{array_id}_{task}") for task in tasks] if tasks else [job]
        for i, task_job in enumerate(jobs):
            if array_id in budget and task_job.eligible:
                if budget[array_id] > 0:
                    budget[array_id] -= 1
                else:
                    jobs[i] = replace(task_job, eligible=False, reason="JobArrayTaskLimit")
        return jobs

    def nodes(self) -> list[WlmNode]:
        """Every node slurmctld knows (FUTURE placeholders excluded), state normalised."""
        data = _load(SINFO, self.runner.run(list(SINFO)))
        nodes = []
        seen = set()
        for rec in data.get("nodes") or []:
            name = _text(rec.get("name")) if isinstance(rec, dict) else None
            if not name or name in seen:
                continue
            seen.add(name)
            words = _words(rec.get("state")) | _words(rec.get("state_flags"))
            if "FUTURE" in words:
                continue
            cores_alloc = _number(rec.get("alloc_cpus")) or 0
            nodes.append(
                WlmNode(
                    name=name,
                    state=node_state(words, cores_alloc),
                    cores=_number(rec.get("cpus")) or 0,
                    cores_alloc=cores_alloc,
                    memory_mb=_number(rec.get("real_memory")) or 0,
                    reason=_text(rec.get("reason")),
                    features=frozenset(_list(rec.get("features"))),
                    address=_text(rec.get("address")),
                    last_busy=float(_number(rec.get("last_busy")) or 0) or None,
                )
            )
        return nodes

    # --- changing --------------------------------------------------------
    def drain(self, node: str, reason: str) -> None:
        """Drain; the reason carries the engine's prefix so an admin's drains stay apart."""
        reason = " ".join(str(reason).split())  # one line: Slurm stores it as given
        if not reason.startswith(DRAIN_REASON_PREFIX):
            reason = f"{DRAIN_REASON_PREFIX} {reason}"
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
        for key, value in sorted((resource.options.get("slurm_node_conf") or {}).items()):
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


def node_state(words: Iterable[str], cores_alloc: int = 0) -> str:
    """idle, busy, draining (drain flag, jobs), drained (drain flag, none), down or unknown;
    for cloud nodes also off (powered down), powering_up and powering_down.

    A cloud node Slurm has placed jobs on while it was off is powering_up
    (it is also NOT_RESPONDING until its slurmd registers). One that failed
    to come up within ResumeTimeout is DOWN and stays powered down: down.
    """
    words = set(words)
    if "POWERING_UP" in words:
        return "powering_up"
    if "POWERING_DOWN" in words:
        return "powering_down"
    if "POWERED_DOWN" in words:
        return "down" if words & _FAILED else "off"
    if words & _DOWN:
        return "down"
    busy = bool(words & _BUSY) or cores_alloc > 0
    if "DRAIN" in words or "DRAINING" in words or "DRAINED" in words:
        return "draining" if busy else "drained"
    if busy:
        return "busy"
    if "IDLE" in words:
        return "idle"
    return "unknown"


def _job_id(rec: dict) -> str:
    """squeue's id: ``123``, or ``120_3`` for a task of array 120."""
    array_id, task = _number(rec.get("array_job_id")), _number(rec.get("array_task_id"))
    if array_id and task is not None:
        return f"{array_id}_{task}"
    return str(_number(rec.get("job_id")) or rec.get("job_id"))


def _is_array_rest(rec: dict) -> bool:
    return bool(_number(rec.get("array_job_id"))) and _number(rec.get("array_task_id")) is None


def _id_key(job_id: str) -> tuple:
    head, _sep, task = job_id.partition("_")
    return (int(head) if head.isdigit() else 0, head, int(task) if task.isdigit() else -1)
