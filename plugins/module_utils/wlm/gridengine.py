# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grid Engine adapter: Debian's gridengine 8.1.9, qmaster on the head, execd on workers.

Private to the dcaas.cluster collection; its API may change without notice.
Standard library only.

What it runs, all through the Runner (tests replay real captured output,
tests/unit/fixtures/gridengine):

- ``qstat -xml -u * -r -ext``: pending and running jobs of every user, with
  their requests (-r: parallel environment, complexes, queues) and project
  (-ext). A PE job is one record with its master queue and total slots;
  the hosts of its other slots come from ``qhost -xml -j``.
- ``qhost -xml -q`` and ``qhost -xml -j``: every execution host with its
  queue instances (slots, slots used, state letters) and its jobs.
- ``qconf -sp PE``: the allocation rule of a PE that pending jobs ask for.
- ``qconf -shgrp @<cluster>_drained``: the hosts this adapter disabled.
  ``qmod -d`` keeps no reason, so a drain is marked by membership of this
  host group, which no queue uses; a host an admin disabled is not in it.
- ``qmod -d|-e *@HOST``, ``qconf -Ae``/``-Ahgrp``/``-Aq``/``-Aprj`` (files
  passed on stdin), ``qconf -aattr|-dattr hostgroup hostlist``, ``qconf -de``.

Each resource has a host group ``@<cluster>_<resource>`` and a queue
``<cluster>_<resource>.q`` over it, with slots = the resource's cores, the
PEs named in ``wlm.options.parallel_environments``, and, for a resource that
lists accounts, ``projects`` = those accounts (Grid Engine projects, ``qsub
-P``). Tenant queues get lower sequence numbers than shared ones, so with
the scheduler's ``queue_sort_method seqno`` a tenant's jobs fill its own pool
first and overflow into the shared pool. ``admit`` creates what is
missing and adds a worker; see docs/gridengine.md.

An answer that cannot be read whole is refused with CommandError naming the
command, the record and the field, never read as fewer jobs or hosts: a
running job left out leaves its hosts looking free, a host left out looks
gone and its instance gets deleted.
"""

from __future__ import annotations

import math
import re
import reprlib
import time
import xml.etree.ElementTree as ET
from dataclasses import replace

from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Job, Resource, WlmNode
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError

# Grid Engine prints array task lists in Slurm's syntax (1-3:1, 2,3): one reader for both.
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.arrays import array_tasks
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import Capability, WorkloadManager

QSTAT = ("qstat", "-xml", "-u", "*", "-r", "-ext")
QSTAT_PENDING = ("qstat", "-xml", "-u", "*", "-s", "p")
QHOST_QUEUES = ("qhost", "-xml", "-q")
QHOST_JOBS = ("qhost", "-xml", "-j")

# WlmNode.state values this adapter reports (the model's normalised words).
IDLE = "idle"
BUSY = "busy"
DRAINING = "draining"
DRAINED = "drained"
DOWN = "down"
UNKNOWN = "unknown"  # registered, execd never reported yet: still booting

# Job state letters (qstat(1)): d deleted, E error, h hold, q queued, r
# running, R restarted, s/S/T suspended (job, queue, threshold), t
# transferring, w waiting, z zombie. A state with any other letter fails
# the answer: it may be a running job's.
_JOB_LETTERS = frozenset("dEhqrRsStTwz")
# Queue instance state letters (qstat(1)): a/A alarm, c configuration
# ambiguous, C/s/S suspended (calendar, manual, subordinate), d/D disabled
# (manual, calendar), E error, o orphaned, u unknown (execd not answering).
_QUEUE_LETTERS = frozenset("aAcCdDEosSu")
_CLOSED = frozenset("CdDsS")  # takes no new jobs

# Per-slot requests read as a job's memory unless wlm.options.memory_complexes says otherwise.
MEMORY_COMPLEXES = ("h_vmem", "mem_free")
# Resource names of the complexes that time-limit a job.
_TIME_COMPLEXES = frozenset({"h_rt", "s_rt"})
# Complexes that pin a job to named hosts: new workers get new names.
_HOST_COMPLEXES = frozenset({"hostname", "h"})

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DIGITS_RE = re.compile(r"[0-9]{1,19}")
_TASK_RE = re.compile(r"[0-9]{1,10}")
_LOAD_RE = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")
_MEMORY_RE = re.compile(r"([0-9]{1,15}(?:\.[0-9]{1,9})?)([kKmMgGtT]?)")
_TIME_RE = re.compile(r"(?:([0-9]{1,9}):)?(?:([0-9]{1,9}):)?([0-9]{1,12})")
_MB = {"": 1 / 2**20, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}

_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 100


def _show(value: object) -> str:
    return _SHOW.repr(value)


class GridEngineConfigError(ValueError):
    """The adapter's options cannot produce a worker's join configuration or queue."""


def _check_name(node: str) -> str:
    # A wildcard or list such as 'n*' or 'a,b' would act on many hosts at once.
    if not isinstance(node, str) or not _NAME_RE.match(node):
        raise ValueError(f"{_show(node)} is not a single Grid Engine host name")
    return node


def memory_mb(value: str) -> int:
    """Megabytes of a Grid Engine memory value (``512M``, ``1G``, ``1.5g``, bytes); ValueError otherwise.

    Grid Engine's k/m/g/t are powers of 1024, as are K/M/G/T here: the
    difference (1000 or 1024) would only make dcaas plan a little bigger.
    """
    m = _MEMORY_RE.fullmatch(value.strip())
    if not m:
        raise ValueError(f"is not a memory size: {_show(value)}")
    return math.ceil(float(m.group(1)) * _MB[m.group(2).lower()])


def seconds(value: str) -> int:
    """Seconds of a Grid Engine time value (``3600``, ``1:00:00``, ``0:30:0``); ValueError otherwise."""
    m = _TIME_RE.fullmatch(value.strip())
    if not m:
        raise ValueError(f"is not a time: {_show(value)}")
    parts = [int(p) for p in m.groups() if p is not None]
    total = 0
    for part in parts:
        total = total * 60 + part
    return total


def _iso_time(value: str) -> float:
    """Epoch seconds of qstat's ``2026-12-06T00:59:19`` (qmaster's local time, as this host's)."""
    return time.mktime(time.strptime(value, "%Y-%m-%dT%H:%M:%S"))


class _Record:
    """One XML element of an answer, read child by child; errors name command, record and field."""

    def __init__(self, argv: tuple[str, ...], where: str, el: ET.Element):
        self.argv = argv
        self.where = where
        self.el = el

    def error(self, problem: str) -> CommandError:
        return CommandError(self.argv, 0, "", f"{self.where} {problem}")

    def _one(self, tag: str) -> ET.Element | None:
        found = self.el.findall(tag)
        if len(found) > 1:
            raise self.error(f"has {len(found)} <{tag}> elements, expected at most one")
        return found[0] if found else None

    def text(self, tag: str, required: bool = False, blank: bool = True) -> str | None:
        """The child's text; None when it is missing, or blank and ``blank`` allows that."""
        child = self._one(tag)
        if child is not None and len(child):
            raise self.error(f"<{tag}> holds elements where text belongs")
        text = (child.text or "").strip() if child is not None else ""
        if not text and (required or (child is not None and not blank)):
            raise self.error(f"has no <{tag}> value (got {_show(None if child is None else child.text)})")
        return text or None

    def number(self, tag: str, required: bool = False) -> int | None:
        text = self.text(tag, required)
        if text is None:
            return None
        if not _DIGITS_RE.fullmatch(text):
            raise self.error(f"field <{tag}> is not a whole number: {_show(text)}")
        return int(text)

    def values(self, tag: str, key: str = "name") -> dict[str, str]:
        """``<tag name="k">v</tag>`` children as {k: v}; a child without a name, or named twice, fails."""
        out: dict[str, str] = {}
        for child in self.el.findall(tag):
            name = child.get(key)
            if not name or not _NAME_RE.match(name) or name in out or len(child):
                raise self.error(f"has a <{tag}> that cannot be read ({key}={_show(name)})")
            out[name] = (child.text or "").strip()
        return out


def _parse(argv: tuple[str, ...], text: str, root_tag: str) -> ET.Element:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CommandError(argv, 0, "", f"output is not whole XML ({exc}); nothing was read") from None
    except (ValueError, RecursionError) as exc:
        raise CommandError(argv, 0, "", f"output is XML no Grid Engine prints: {_show(str(exc))}") from None
    if root.tag != root_tag:
        raise CommandError(argv, 0, "", f"expected a <{root_tag}> document, got <{_show(root.tag)}>")
    return root


def _job_lists(argv: tuple[str, ...], root: ET.Element) -> list[tuple[str, _Record]]:
    """(section, record) for every job of a qstat answer; both sections must be there."""
    out = []
    for section, expected in (("queue_info", "running"), ("job_info", "pending")):
        parts = root.findall(section)
        if len(parts) != 1:
            raise CommandError(argv, 0, "", f"the answer has {len(parts)} <{section}> sections, expected one")
        for i, el in enumerate(parts[0]):
            rec = _Record(argv, f"{section}/{el.tag}[{i}]", el)
            if el.tag != "job_list":
                raise rec.error("is not a <job_list>")
            if el.get("state") != expected:
                raise rec.error(f"has state={_show(el.get('state'))}, expected {expected!r} in <{section}>")
            out.append((expected, rec))
    return out


def _job_number(rec: _Record) -> int:
    number = rec.number("JB_job_number", required=True)
    rec.where = f"job {number} ({rec.where})"
    return number


def _state_letters(rec: _Record) -> set[str]:
    state = rec.text("state", required=True) or ""
    letters = set(state)
    if not letters <= _JOB_LETTERS:
        raise rec.error(f"has a job state dcaas does not know ('state': {_show(state)})")
    return letters


def _queue_host(rec: _Record) -> tuple[str, str]:
    queue = rec.text("queue_name", required=True) or ""
    name, sep, host = queue.partition("@")
    if not sep or not name or not _NAME_RE.match(host):
        raise rec.error(f"field <queue_name> is not QUEUE@HOST: {_show(queue)}")
    return name, host


def _task_ids(rec: _Record, running: bool) -> list[str]:
    # qstat prints <tasks> for array tasks only: an empty one is no answer of its.
    spec = rec.text("tasks", blank=False)
    if spec is None:
        return []
    if running:
        # A running record is one task.
        if not _TASK_RE.fullmatch(spec):
            raise rec.error(f"field <tasks> of a running record is not one task id: {_show(spec)}")
        return [spec]
    try:
        tasks = array_tasks(spec)
    except ValueError as exc:
        raise rec.error(f"field <tasks>: {exc}") from None
    if "%" in spec or not tasks:
        raise rec.error(f"field <tasks> is not a task list: {_show(spec)}")
    return tasks


class GridEngineManager(WorkloadManager):
    """Grid Engine 8.1 (Debian's gridengine packages) with execution hosts added and removed by dcaas.

    ``options``:
      ``qmaster``: the qmaster's host name as workers resolve it, required to launch;
      ``cell`` (``default``) and ``root`` (``/var/lib/gridengine``): SGE_CELL and SGE_ROOT;
      ``parallel_environments``: PEs the dcaas queues list (created by the site or the roles,
      ``allocation_rule`` = the cores of a worker, or ``$pe_slots``);
      ``memory_complexes`` (``h_vmem``, ``mem_free``): per-slot requests read as the job's memory;
      ``worker_complexes``: other complexes every worker offers, so that jobs requesting them are planned.
    Grid Engine has no shared secret: a worker needs only the qmaster's name
    and consistent forward and reverse name resolution.
    """

    name = "gridengine"
    # No cloud nodes: Grid Engine has no power saving. No features: a job
    # chooses a resource through its queue (qsub -q <cluster>_<resource>.q).
    # Grid Engine resolves host names on each contact: no address updates.
    capabilities = frozenset({Capability.PENDING_WATCH, Capability.ADMITS})
    OPTION_SPEC = {
        "qmaster": {"type": "str"},
        "cell": {"type": "str", "default": "default"},
        "root": {"type": "path", "default": "/var/lib/gridengine"},
        "parallel_environments": {"type": "list", "elements": "str", "default": []},
        "memory_complexes": {"type": "list", "elements": "str", "default": list(MEMORY_COMPLEXES)},
        "worker_complexes": {"type": "list", "elements": "str", "default": []},
    }

    # --- names -------------------------------------------------------------
    def host_group(self, resource: str) -> str:
        return f"@{self.cluster}_{resource}"

    def queue(self, resource: str) -> str:
        return f"{self.cluster}_{resource}.q"

    @property
    def drained_group(self) -> str:
        return f"@{self.cluster}_drained"

    def _queue_resource(self, queue: str) -> str | None:
        """The resource whose queue this is, or None for a queue dcaas did not make."""
        prefix = f"{self.cluster}_"
        if queue.startswith(prefix) and queue.endswith(".q") and len(queue) > len(prefix) + 2:
            return queue[len(prefix) : -2]
        return None

    # --- reading -----------------------------------------------------------
    def jobs(self) -> list[Job]:
        """Running jobs (one per array task), then pending ones in qstat's (priority) order.

        CommandError for an answer that is not a whole, readable job list.
        """
        root = _parse(QSTAT, self.runner.run(list(QSTAT)), "job_info")
        records = _job_lists(QSTAT, root)
        offered = set(self._pes())
        rules = self._allocation_rules(
            {pe for state, rec in records if state == "pending" for pe in _pe_of(rec) if pe in offered}
        )
        running: list[Job] = []
        pending: list[Job] = []
        for state, rec in records:
            for job in self._jobs_of(rec, state, rules):
                (pending if job.pending else running).append(job)
        return running + pending

    def _allocation_rules(self, pes: set[str]) -> dict[str, str]:
        """PE name -> allocation_rule, from ``qconf -sp`` (PE names from the answer are checked first)."""
        rules = {}
        for pe in sorted(pes):
            argv = ("qconf", "-sp", pe)
            if not _NAME_RE.match(pe):
                raise CommandError(QSTAT, 0, "", f"a job asks for PE {_show(pe)}, which is not a PE name")
            fields = config_fields(self.runner.run(list(argv)))
            rule = fields.get("allocation_rule")
            if not rule:
                raise CommandError(argv, 0, "", f"the PE has no allocation_rule (keys: {_show(sorted(fields))})")
            rules[pe] = rule
        return rules

    def _jobs_of(self, rec: _Record, state: str, rules: dict[str, str]) -> list[Job]:
        number = _job_number(rec)
        letters = _state_letters(rec)
        slots = rec.number("slots", required=True) or 0
        running = state == "running"
        walltime, memory_per_slot, notes = self._requests(rec)
        pe = _pe_of(rec)
        cores, nodes = max(slots, 1), 1
        if pe and not running and pe[0] not in self._pes():
            notes.append(
                f"asks for PE {pe[0]}, which the dcaas queues do not offer (wlm.options.parallel_environments)"
            )
        elif pe:
            rule = rules.get(pe[0])
            # A running job (no rule read) holds its slots already: its hosts come from qhost -j.
            if rule is None or rule == "$pe_slots":
                cores, nodes = max(slots, 1), 1
            elif _DIGITS_RE.fullmatch(rule) and int(rule) > 0:
                per_host = int(rule)
                cores, nodes = min(per_host, max(slots, 1)), max(1, -(-slots // per_host))
            else:
                notes.append(
                    f"PE {pe[0]} has allocation_rule {rule}; dcaas plans hosts only for $pe_slots or a "
                    "fixed number of slots per host"
                )
        partitions, features, queue_note = self._queues(rec)
        if queue_note:
            notes.append(queue_note)
        submit = rec.text("JB_submission_time", blank=False)
        try:
            submit_time = _iso_time(submit) if submit else None
        except ValueError:
            raise rec.error(f"field <JB_submission_time> is not YYYY-MM-DDTHH:MM:SS: {_show(submit)}") from None
        project = rec.text("JB_project")
        job = Job(
            id=str(number),
            state=state,
            cores=cores,
            memory_mb=memory_per_slot * cores,
            nodes=nodes,
            walltime_s=walltime,
            partitions=partitions,
            # -ext prints NA for a job without a project; NONE is no project name either.
            account=None if project in (None, "NA", "NONE") else project,
            features=features,
            user=rec.text("JB_owner"),
            submit_time=submit_time,
        )
        tasks = _task_ids(rec, running)
        if running:
            _queue, host = _queue_host(rec)
            job = replace(job, node_names=(host,))
            return [replace(job, id=f"{number}.{tasks[0]}")] if tasks else [job]
        reason = None
        if "h" in letters:
            reason = "on hold (qhold/qrls)"
        elif "E" in letters:
            reason = "in error state; see qstat -j, clear with qmod -cj"
        elif "d" in letters:
            reason = "being deleted"
        elif notes:
            reason = "; ".join(notes)
        job = replace(job, eligible=reason is None, reason=reason)
        return [replace(job, id=f"{number}.{task}") for task in tasks] if tasks else [job]

    def _requests(self, rec: _Record) -> tuple[int | None, int, list[str]]:
        """(walltime s, memory MB per slot, notes on requests no new worker can meet)."""
        walltime, memory, notes = None, 0, []
        memory_names = set(self.options.get("memory_complexes", MEMORY_COMPLEXES) or ())
        offered = set(self.options.get("worker_complexes") or ())
        for name, value in rec.values("hard_request").items():
            try:
                if name in memory_names:
                    memory = max(memory, memory_mb(value))
                elif name in _TIME_COMPLEXES:
                    limit = seconds(value)
                    walltime = limit if walltime is None else min(walltime, limit)
            except ValueError as exc:
                raise rec.error(f"request {name}={_show(value)} {exc}") from None
            if name in _HOST_COMPLEXES:
                notes.append(f"needs the named host {_show(value)}")
            elif name not in memory_names | _TIME_COMPLEXES | offered:
                notes.append(f"requests complex {name}={_show(value)}, which dcaas workers are not known to offer")
        return walltime, memory, notes

    def _queues(self, rec: _Record) -> tuple[tuple[str, ...], frozenset[str], str | None]:
        """A hard queue request: (queue names, the feature of the one dcaas resource it names, note)."""
        names = []
        for child in rec.el.findall("hard_req_queue"):
            if len(child):
                raise rec.error("<hard_req_queue> holds elements where text belongs")
            names.extend(q.strip() for q in (child.text or "").split(",") if q.strip())
        if not names:
            return (), frozenset(), None
        resources = {self._queue_resource(q) for q in names}
        if len(resources) == 1 and None not in resources:
            # One dcaas queue: only that resource's workers serve it.
            (resource,) = resources
            return tuple(names), frozenset({naming.resource_feature(resource)}), None
        return tuple(names), frozenset(), f"asks for queue(s) {_show(','.join(names))}, not one dcaas queue"

    def nodes(self) -> list[WlmNode]:
        """Every execution host with its state; CommandError for an answer not whole and readable."""
        hosts = self._hosts()
        drained = self._drained()
        out = []
        for name, (values, queues, jobs) in hosts.items():
            state, reason = _host_state(values, queues, jobs)
            if state in (DRAINED, DRAINING) and name in drained:
                reason = naming.drain_reason("queue instances disabled by dcaas")
            resources = {r for r in (self._queue_resource(q) for q in queues) if r}
            features = (
                frozenset(f for r in sorted(resources) for f in naming.worker_features(r)) if resources else frozenset()
            )
            open_slots = [slots for _used, slots, letters in queues.values() if "o" not in letters]
            out.append(
                WlmNode(
                    name=name,
                    state=state,
                    cores=max(open_slots, default=0),
                    cores_alloc=sum(used for used, _slots, _letters in queues.values()),
                    # mem_total is the whole machine's in a container, and
                    # Grid Engine books memory only through a consumable: the
                    # engine takes the resource's memory instead.
                    memory_mb=0,
                    reason=reason,
                    features=features,
                    jobs=tuple(sorted(jobs)),
                )
            )
        return out

    def _hosts(self) -> dict[str, tuple[dict[str, str], dict[str, tuple[int, int, str]], set[str]]]:
        """host -> (hostvalues, queue -> (slots used, slots, state letters), job ids), from qhost -q and -j."""
        with_queues = _parse(QHOST_QUEUES, self.runner.run(list(QHOST_QUEUES)), "qhost")
        with_jobs = _parse(QHOST_JOBS, self.runner.run(list(QHOST_JOBS)), "qhost")
        hosts = {}
        for rec in _host_records(QHOST_QUEUES, with_queues):
            values = rec.values("hostvalue")
            # '-' until execd first reports, and again once it is unheard of.
            for key, pattern in (("num_proc", _DIGITS_RE), ("load_avg", _LOAD_RE)):
                value = values.get(key)
                if value != "-" and not (value and pattern.fullmatch(value)):
                    raise rec.error(f"hostvalue {key!r} is neither '-' nor a number: {_show(value)}")
            queues = {}
            for i, el in enumerate(rec.el.findall("queue")):
                q = _Record(QHOST_QUEUES, f"{rec.where} queue[{i}]", el)
                qname = el.get("name")
                if not qname or qname in queues:
                    raise q.error(f"has no or a repeated queue name ({_show(qname)})")
                qv = q.values("queuevalue")
                letters = qv.get("state_string")
                if letters is None or not set(letters) <= _QUEUE_LETTERS:
                    raise q.error(f"has no queue state dcaas knows ('state_string': {_show(letters)})")
                numbers = []
                for key in ("slots_used", "slots"):
                    if not _DIGITS_RE.fullmatch(qv.get(key, "")):
                        raise q.error(f"queuevalue {key!r} is not a whole number: {_show(qv.get(key))}")
                    numbers.append(int(qv[key]))
                queues[qname] = (numbers[0], numbers[1], letters)
            hosts[rec.el.get("name")] = (values, queues, set())
        listed = set()
        for rec in _host_records(QHOST_JOBS, with_jobs):
            name = rec.el.get("name")
            listed.add(name)
            if name not in hosts:
                raise rec.error("is not in the qhost -q answer (hosts changed between the reads)")
            for i, el in enumerate(rec.el.findall("job")):
                j = _Record(QHOST_JOBS, f"{rec.where} job[{i}]", el)
                number = el.get("name") or ""
                if not _DIGITS_RE.fullmatch(number):
                    raise j.error(f"has no job number (name={_show(number)})")
                task = j.values("jobvalue", "name").get("taskid")
                if task is not None and not _TASK_RE.fullmatch(task):
                    raise j.error(f"has a taskid that is not a number: {_show(task)}")
                hosts[name][2].add(f"{number}.{task}" if task else number)
        missing = sorted(set(hosts) - listed)
        if missing:
            raise CommandError(
                QHOST_JOBS, 0, "", f"lists no host {_show(missing[0])} that qhost -q lists (changed between reads)"
            )
        return hosts

    def _drained(self) -> set[str]:
        """Hosts in the marker group (a missing group: none); anything unreadable fails the answer."""
        argv = ("qconf", "-shgrp", self.drained_group)
        try:
            text = self.runner.run(list(argv))
        except CommandError as exc:
            if "does not exist" in (exc.stdout + exc.stderr).lower():
                return set()
            raise
        fields = config_fields(text)
        if fields.get("group_name") != self.drained_group or "hostlist" not in fields:
            raise CommandError(argv, 0, "", f"is not the host group's definition: {_show(text)}")
        return {h for h in fields["hostlist"].split() if h != "NONE"}

    def pending_ids(self) -> frozenset[str]:
        """Pending job ids (``14``, ``13.2,3`` for an array record's tasks), from qstat -s p."""
        root = _parse(QSTAT_PENDING, self.runner.run(list(QSTAT_PENDING)), "job_info")
        ids = set()
        for _state, rec in _job_lists(QSTAT_PENDING, root):
            number = _job_number(rec)
            tasks = rec.text("tasks")
            ids.add(f"{number}.{tasks}" if tasks else str(number))
        return frozenset(ids)

    # --- changing ----------------------------------------------------------
    def drain(self, node: str, reason: str) -> None:
        """Disable every queue instance of the host; its jobs run on. The marker group says dcaas did it.

        Grid Engine keeps no reason for a disabled queue: the engine's reason
        is not stored (the marker reads back as "dcaas: queue instances disabled by dcaas").
        """
        _check_name(node)
        self._hostgroup_add(self.drained_group, node)
        self.runner.run(["qmod", "-d", f"*@{node}"])

    def resume(self, node: str) -> None:
        _check_name(node)
        self.runner.run(["qmod", "-e", f"*@{node}"])
        self._hostgroup_remove(self.drained_group, node)

    def remove(self, node: str) -> None:
        """Forget a host once nothing runs there; while something does, leave it for a later pass.

        ``qconf -de`` is refused while a job runs on the host, and while a
        host group lists it: the host leaves its groups first. A host
        Grid Engine no longer lists is fine.
        """
        _check_name(node)
        hosts = self._hosts()
        if node not in hosts:
            return
        _values, queues, jobs = hosts[node]
        if jobs or any(used for used, _slots, _letters in queues.values()):
            return  # not yet: the next pass finds it again
        groups = sorted(self.host_group(r) for r in (self._queue_resource(q) for q in queues) if r)
        for group in [*groups, self.drained_group]:
            self._hostgroup_remove(group, node)
        try:
            self.runner.run(["qconf", "-de", node])
        except CommandError:
            # A job that started since the look: not yet. Anything else is an error.
            _values, queues, jobs = self._hosts().get(node, ({}, {}, set()))
            if jobs or any(used for used, _slots, _letters in queues.values()):
                return
            raise

    def admit(self, resource: Resource, node: str, address: str) -> None:
        """Add ``node`` as an execution host of ``resource`` (its host group, hence its queue).

        The engine asks on every pass until qhost lists the host
        (Capability.ADMITS). Nothing is done while the name does not resolve
        on the qmaster's host yet: qmaster caches a failed lookup, so adding
        the host early would keep it out. An execd that started earlier
        retries and is accepted about a second later. Creates the
        resource's project(s), host group and queue when missing. Repeating
        it is harmless.
        """
        _check_name(node)
        if not self.runner.run(["getent", "hosts", node], check=False).strip():
            return  # not yet: the next pass asks again
        self._ensure_resource(resource)
        try:
            self._qconf_file("-Ae", exec_host_config(node))
        except CommandError as exc:
            if "already exist" not in (exc.stdout + exc.stderr).lower():
                raise
        self._hostgroup_add(self.host_group(resource.name), node)

    def _ensure_resource(self, resource: Resource) -> None:
        if resource.accounts:
            have = set(self.runner.run(["qconf", "-sprjl"], check=False).split())
            for project in resource.accounts:
                if project not in have:
                    self._qconf_file("-Aprj", project_config(project))
        groups = set(self.runner.run(["qconf", "-shgrpl"], check=False).split())
        for group in (self.host_group(resource.name), self.drained_group):
            if group not in groups:
                self._qconf_file("-Ahgrp", f"group_name {group}\nhostlist NONE\n")
        if self.queue(resource.name) not in set(self.runner.run(["qconf", "-sql"], check=False).split()):
            self._qconf_file("-Aq", self.queue_config(resource))

    def queue_config(self, resource: Resource) -> str:
        """The resource's queue in ``qconf -Aq`` format: tenant queues sort before shared ones."""
        for word in (resource.name, *resource.accounts, *self._pes()):
            if not _NAME_RE.match(word):
                raise GridEngineConfigError(f"resource {resource.name!r}: {_show(word)} is not a Grid Engine name")
        # Tenant pools first, then shared, each by priority: qmaster's
        # queue_sort_method seqno then fills them in the order dcaas launches.
        seq = (0 if resource.accounts else 1_000_000) + 1_000_000 + resource.priority
        settings = {
            "qname": self.queue(resource.name),
            "hostlist": self.host_group(resource.name),
            "seq_no": str(seq),
            # In containers every node reports the whole machine's load:
            # thresholds would alarm every instance at once.
            "load_thresholds": "NONE",
            "pe_list": " ".join(self._pes()) or "NONE",
            "slots": str(resource.cores),
            "projects": ",".join(resource.accounts) or "NONE",
        }
        return "".join(f"{key} {value}\n" for key, value in {**_QUEUE_DEFAULTS, **settings}.items())

    def _pes(self) -> list[str]:
        return [str(pe) for pe in self.options.get("parallel_environments") or ()]

    def _qconf_file(self, option: str, content: str) -> None:
        # qconf -A* reads a file on the qmaster's host, which may be behind
        # the runner's prefix: the content goes there on stdin.
        script = 'f=$(mktemp) && cat > "$f" && qconf ' + option + ' "$f"; rc=$?; rm -f "$f"; exit $rc'
        self.runner.run(["sh", "-c", script], input_text=content)

    def _hostgroup_add(self, group: str, node: str) -> None:
        try:
            self.runner.run(["qconf", "-aattr", "hostgroup", "hostlist", node, group])
        except CommandError as exc:
            if "already" not in (exc.stdout + exc.stderr).lower():
                raise

    def _hostgroup_remove(self, group: str, node: str) -> None:
        try:
            self.runner.run(["qconf", "-dattr", "hostgroup", "hostlist", node, group])
        except CommandError as exc:
            text = (exc.stdout + exc.stderr).lower()
            if "does not exist" not in text and "not in" not in text and "doesn't" not in text:
                raise

    # --- joining -----------------------------------------------------------
    def join_config(self, resource: Resource, node_name: str) -> dict:
        """cloud-init parts that start the worker image's execd against the qmaster.

        Nothing is installed (the image has gridengine-exec) and nothing is
        secret. The worker's own name and the qmaster's must resolve forward
        and reverse the same way on both sides before execd starts: that is
        the cloud's naming (docs/gridengine.md); execd waits for it here.
        """
        _check_name(node_name)
        qmaster = self.options.get("qmaster")
        if not qmaster or not _NAME_RE.match(str(qmaster)):
            raise GridEngineConfigError(
                "wlm.options.qmaster must name the Grid Engine qmaster's host as workers resolve it, "
                f"such as 'head'; got {_show(qmaster)}"
            )
        cell = str(self.options.get("cell") or "default")
        root = str(self.options.get("root") or "/var/lib/gridengine")
        if not _NAME_RE.match(cell) or not re.fullmatch(r"/[A-Za-z0-9_./-]{1,200}", root):
            raise GridEngineConfigError(f"wlm.options.cell {_show(cell)} or root {_show(root)} is not a name / path")
        wait = (
            f"for i in $(seq 60); do getent hosts {qmaster} >/dev/null && getent hosts {node_name} >/dev/null "
            "&& exit 0; sleep 1; done; echo 'dcaas: qmaster or own name does not resolve' >&2; exit 1"
        )
        return {
            "write_files": [
                {
                    "path": f"{root}/{cell}/common/act_qmaster",
                    "content": f"{qmaster}\n",
                    "owner": "root:root",
                    "permissions": "0644",
                },
                {
                    "path": "/etc/default/gridengine",
                    "content": f"# Written by dcaas at launch: {node_name} runs execd only, for {self.cluster}.\n"
                    f"SGE_ROOT={root}\nSGE_CELL={cell}\nSGE_START_MASTERD=no\nSGE_START_EXECD=yes\n",
                    "owner": "root:root",
                    "permissions": "0644",
                },
            ],
            "runcmd": [
                ["sh", "-c", wait],
                ["systemctl", "enable", "--now", "gridengine-exec"],
            ],
        }


def _pe_of(rec: _Record) -> list[str]:
    """The name of the PE a job asks for (one at most), as a list."""
    names = list(rec.values("requested_pe"))
    if len(names) > 1:
        raise rec.error(f"asks for {len(names)} PEs")
    return names


def _host_records(argv: tuple[str, ...], root: ET.Element) -> list[_Record]:
    """The execution hosts of a qhost answer (not 'global'), each named once and validly."""
    out = []
    seen = set()
    for i, el in enumerate(root):
        rec = _Record(argv, f"host[{i}]", el)
        name = el.get("name")
        if el.tag != "host" or not name or not _NAME_RE.match(name) or name in seen:
            raise rec.error(f"is not a host element with a new host name (<{_show(el.tag)}> name={_show(name)})")
        seen.add(name)
        if name == "global":
            continue
        rec.where = f"host {name} ({rec.where})"
        out.append(rec)
    return out


def _host_state(
    values: dict[str, str], queues: dict[str, tuple[int, int, str]], jobs: set[str]
) -> tuple[str, str | None]:
    """The normalised state of a host and why, from its load report and its queue instances.

    An orphaned instance (the host left the queue's host group while jobs
    ran) takes no jobs; only its running jobs count.
    """
    reported = values.get("num_proc", "-") != "-"
    busy = bool(jobs) or any(used for used, _slots, _letters in queues.values())
    open_queues = [letters for _used, _slots, letters in queues.values() if "o" not in letters]
    if not open_queues:
        if busy:
            return DRAINING, "in no queue (left its host group)"
        return (DOWN, "in no queue") if reported else (UNKNOWN, None)
    letters = set().union(*open_queues)
    if "E" in letters:
        return DOWN, "a queue instance is in error state (qmod -cq)"
    if "u" in letters or values.get("load_avg", "-") == "-":
        # Never reported: execd still starting. Reported before: gone quiet.
        return (DOWN, "execd does not answer") if reported else (UNKNOWN, None)
    if all(set(q) & _CLOSED for q in open_queues):
        return (DRAINING if busy else DRAINED), "queue instances disabled or suspended"
    return (BUSY if busy else IDLE), None


def config_fields(text: str) -> dict[str, str]:
    """``key value`` lines of qconf's show output, ``\\``-continued lines joined."""
    fields: dict[str, str] = {}
    key = None
    for raw in text.splitlines():
        line = raw.rstrip()
        cont = line.endswith("\\")
        line = line.rstrip("\\").strip()
        if key is not None:
            fields[key] += " " + line
        elif line:
            key, _sep, value = line.partition(" ")
            fields[key] = value.strip()
        if not cont:
            key = None
    return {k: " ".join(v.replace(",", " ").split()) if k == "hostlist" else v for k, v in fields.items()}


def exec_host_config(node: str) -> str:
    return (
        f"hostname {node}\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\n"
        "projects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n"
    )


def project_config(name: str) -> str:
    if not _NAME_RE.match(name):
        raise GridEngineConfigError(f"account {_show(name)} is not a Grid Engine project name")
    return f"name {name}\noticket 0\nfshare 0\nacl NONE\nxacl NONE\n"


_LIMITS = ("rt", "cpu", "fsize", "data", "stack", "core", "rss", "vmem")
# Every attribute of a queue, as ``qconf -sq`` prints them for Debian's
# 8.1.9 defaults; queue_config sets the ones dcaas decides.
_QUEUE_DEFAULTS = {
    "qname": "",
    "hostlist": "",
    "seq_no": "0",
    "load_thresholds": "NONE",
    "suspend_thresholds": "NONE",
    "nsuspend": "1",
    "suspend_interval": "00:05:00",
    "priority": "0",
    "min_cpu_interval": "00:05:00",
    "processors": "UNDEFINED",
    "qtype": "BATCH INTERACTIVE",
    "ckpt_list": "NONE",
    "pe_list": "NONE",
    "rerun": "FALSE",
    "slots": "1",
    "tmpdir": "/tmp",
    "shell": "/bin/bash",
    "prolog": "NONE",
    "epilog": "NONE",
    "shell_start_mode": "posix_compliant",
    "starter_method": "NONE",
    "suspend_method": "NONE",
    "resume_method": "NONE",
    "terminate_method": "NONE",
    "notify": "00:00:60",
    "owner_list": "NONE",
    "user_lists": "NONE",
    "xuser_lists": "NONE",
    "subordinate_list": "NONE",
    "complex_values": "NONE",
    "projects": "NONE",
    "xprojects": "NONE",
    "calendar": "NONE",
    "initial_state": "default",
    **{f"{k}_{limit}": "INFINITY" for limit in _LIMITS for k in "sh"},
}
