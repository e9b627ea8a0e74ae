# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data model of the Dynamic Cluster engine.

This module is private to the dcaas.cluster collection; its API may change
without notice. Standard library only: it is imported by modules that run on
managed hosts and by the daemon.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# Labels (podman) / metadata (OpenStack) that mark an instance as ours. A
# restarted engine adopts exactly the instances that carry the cluster label
# and never touches anything else.
LABEL_CLUSTER = "dcaas.cluster"
LABEL_ROLE = "dcaas.role"
LABEL_RESOURCE = "dcaas.resource"
ROLE_WORKER = "worker"


class NodeState(str, enum.Enum):
    """Life cycle of a cloud worker as the engine sees it."""

    STARTING = "starting"  # instance exists, not yet registered with the WLM
    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"  # no new jobs; may still run some
    DOWN = "down"  # WLM says down/not responding, or the instance failed
    DELETING = "deleting"  # instance is going away
    # Cloud nodes (wlm.nodes: cloud) only: the WLM knows the node, no instance
    # runs. Node.jobs lists the jobs the WLM has placed on it: it waits to be
    # powered up.
    OFF = "off"


class WlmState(str, enum.Enum):
    """A node's state as every adapter reports it, whatever words its WLM uses."""

    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"  # drained by the WLM or an admin, jobs still running
    DRAINED = "drained"  # drained, no job left
    DOWN = "down"
    UNKNOWN = "unknown"  # registered, not answering yet
    # Cloud nodes only: the WLM keeps the node while no instance runs.
    OFF = "off"
    POWERING_UP = "powering_up"  # the WLM waits for the node to come up
    POWERING_DOWN = "powering_down"  # the WLM is taking it off


class InstanceStatus(str, enum.Enum):
    """Provider-neutral instance status."""

    BUILDING = "building"
    ACTIVE = "active"
    ERROR = "error"  # failed to boot (OpenStack ERROR, podman exited non-zero)
    STOPPED = "stopped"
    DELETING = "deleting"


@dataclass(frozen=True)
class Job:
    """A job as the WLM reports it.

    ``cores`` and ``memory_mb`` are per node; ``nodes`` is how many nodes the
    job needs at once. ``eligible`` is False for jobs that wait for something
    capacity cannot fix (dependency, hold, begin time).
    """

    id: str
    state: str  # "pending" or "running" (others are dropped by adapters)
    cores: int = 1
    memory_mb: int = 0
    nodes: int = 1
    walltime_s: int | None = None
    partitions: tuple[str, ...] = ()
    account: str | None = None
    features: frozenset[str] = frozenset()
    user: str | None = None
    eligible: bool = True
    reason: str | None = None
    node_names: tuple[str, ...] = ()  # where it runs
    submit_time: float | None = None
    # Pending jobs the WLM's scheduler has planned ahead: when it expects
    # to start them, and on which nodes.
    start_time: float | None = None
    planned_nodes: tuple[str, ...] = ()

    @property
    def pending(self) -> bool:
        return self.state == "pending"


@dataclass(frozen=True)
class WlmNode:
    """A compute node as the WLM reports it."""

    name: str
    state: WlmState
    cores: int = 0
    cores_alloc: int = 0
    memory_mb: int = 0
    reason: str | None = None
    features: frozenset[str] = frozenset()
    address: str | None = None
    jobs: tuple[str, ...] = ()
    last_busy: float | None = None  # epoch seconds it last had a job, if the WLM says

    def __post_init__(self) -> None:
        # A state given by its value ("idle") is read as the enum, and one
        # that is none of them fails here, not deep in a comparison.
        object.__setattr__(self, "state", WlmState(self.state))


@dataclass(frozen=True)
class Instance:
    """A cloud instance that carries this cluster's labels."""

    id: str
    name: str
    resource: str
    status: InstanceStatus
    created: float  # epoch seconds
    role: str = ROLE_WORKER
    address: str | None = None
    zone: str | None = None
    tenant: str | None = None
    fault: str | None = None


@dataclass(frozen=True)
class Resource:
    """One place workers can be started: cloud project + zone + flavor + image."""

    name: str
    flavor: str
    image: str
    cores: int
    memory_mb: int
    min: int = 0
    max: int = 10
    spare: int = 1  # cloud nodes: idle nodes kept up while jobs for it keep coming
    priority: int = 100  # lower runs first
    zone: str | None = None
    tenant: str | None = None
    accounts: tuple[str, ...] = ()  # empty: shared pool, any account
    partitions: tuple[str, ...] = ()  # empty: any partition
    features: tuple[str, ...] = ()
    # The cloud provider's settings for this resource.
    options: dict = field(default_factory=dict, hash=False, compare=False)
    # The keys of the config's resource options that the WLM adapter
    # declares (its RESOURCE_OPTION_SPEC), kept apart so that the provider
    # never sees them.
    wlm_options: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def shared(self) -> bool:
        return not self.accounts


@dataclass(frozen=True)
class Node:
    """A managed worker: an instance merged with its WLM node, if any."""

    name: str
    resource: str
    state: NodeState
    instance_id: str | None
    created: float
    cores: int
    memory_mb: int
    cores_alloc: int = 0
    jobs: tuple[str, ...] = ()
    address: str | None = None
    zone: str | None = None
    tenant: str | None = None
    drained_by_us: bool = False
    in_wlm: bool = False
    reason: str | None = None
    # When the WLM says it last had a job; the policy's idle clock starts
    # there (at most one interval back) instead of at the first pass that
    # sees the node idle. None: the WLM does not say.
    last_busy: float | None = None

    @property
    def running_jobs(self) -> bool:
        return bool(self.jobs) or self.cores_alloc > 0


@dataclass(frozen=True)
class Headroom:
    """What a cloud project can still take; None means no limit known."""

    instances: int | None = None
    cores: int | None = None
    memory_mb: int | None = None

    def nodes_for(self, cores: int, memory_mb: int) -> int | None:
        """How many more nodes of this size fit, or None for unlimited."""
        limits = []
        if self.instances is not None:
            limits.append(self.instances)
        if self.cores is not None and cores > 0:
            limits.append(self.cores // cores)
        if self.memory_mb is not None and memory_mb > 0:
            limits.append(self.memory_mb // memory_mb)
        return max(0, min(limits)) if limits else None


@dataclass(frozen=True)
class Observed:
    """Everything the policy needs to know about the world at one instant."""

    jobs: tuple[Job, ...]
    nodes: tuple[Node, ...]
    # WLM nodes that look like ours (dynamic, cluster feature) but have no
    # instance behind them any more: to be removed from the WLM.
    stale_wlm_nodes: tuple[str, ...] = ()
    headroom: dict[str, Headroom] = field(default_factory=dict)
    # (node, instance address) where the WLM still holds an older address.
    moved: tuple[tuple[str, str], ...] = ()
    # Cloud nodes the WLM has powered down (or is powering down) whose
    # instance still exists: the instance is to be deleted.
    powered_off: tuple[str, ...] = ()
    # Why what was read contradicts itself (a running job on a node the WLM
    # does not list, ...). While there is any, the engine is in protected
    # mode: the plan drains, deletes, forgets and powers down nothing.
    contradictions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Controls:
    """The admin's manual controls (kept in the state file)."""

    auto: bool = True  # False: plan and report, act on nothing
    frozen: bool = False  # True: no launch, drain or delete
    drained_resources: frozenset[str] = frozenset()
    held_nodes: frozenset[str] = frozenset()

    def to_dict(self) -> dict:
        return {
            "auto": self.auto,
            "frozen": self.frozen,
            "drained_resources": sorted(self.drained_resources),
            "held_nodes": sorted(self.held_nodes),
        }

    @classmethod
    def from_dict(cls, data: object, warnings: list[str] | None = None) -> Controls:
        """The controls in ``data``, read strictly; each one that cannot be read is named in ``warnings``.

        The engine never acts on what it cannot read, so an unreadable
        control takes the value that acts on less: ``auto`` off (plan and
        report only), ``frozen`` on. An unreadable list of drained resources
        or held nodes could have named any of them, so it freezes the
        cluster too. A control that is missing (a file older than it) takes
        its default.
        """
        notes = [] if warnings is None else warnings
        if data is None:
            return cls()
        if not isinstance(data, dict):
            notes.append(f"controls: expected a mapping, got {type(data).__name__}; auto off and frozen")
            return cls(auto=False, frozen=True)
        auto, frozen = data.get("auto", True), data.get("frozen", False)
        if not isinstance(auto, bool):
            notes.append(f"controls.auto: expected true or false, got {type(auto).__name__}; auto off")
            auto = False
        if not isinstance(frozen, bool):
            notes.append(f"controls.frozen: expected true or false, got {type(frozen).__name__}; frozen")
            frozen = True
        names: dict[str, frozenset[str]] = {}
        for key in ("drained_resources", "held_nodes"):
            value = data.get(key, [])
            if not isinstance(value, list):
                notes.append(f"controls.{key}: expected a list of names, got {type(value).__name__}; frozen")
                frozen, value = True, []
            kept = [v for v in value if isinstance(v, str)]
            if len(kept) < len(value):
                notes.append(f"controls.{key}: {len(value) - len(kept)} entries that are not names were dropped")
            names[key] = frozenset(kept)
        return cls(auto=auto, frozen=frozen, **names)


@dataclass(frozen=True)
class Backoff:
    until: float
    failures: int
    last_error: str = ""


@dataclass(frozen=True)
class Timers:
    """Small state that survives restarts; losing it is safe.

    idle_since / down_since restart their clocks, back-offs are forgotten,
    and last_submit starts again from the jobs the WLM still shows.
    """

    idle_since: dict[str, float] = field(default_factory=dict)
    down_since: dict[str, float] = field(default_factory=dict)
    backoff: dict[str, Backoff] = field(default_factory=dict)
    # Cloud nodes: the latest submit time of a job each resource could run,
    # among the jobs seen so far (finished jobs drop out of the WLM's view).
    last_submit: dict[str, float] = field(default_factory=dict)
    # Workers seen in the WLM's node list (when first seen), while their
    # instance exists: one that leaves the list without the engine removing
    # it means the list is not to be trusted (see Engine.run_once).
    joined: dict[str, float] = field(default_factory=dict)
    # Resource -> the project ("" for the provider's default) its live
    # instances are in: a resource that leaves the config while those
    # instances can no longer be listed would leave them orphaned.
    homes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "idle_since": dict(sorted(self.idle_since.items())),
            "down_since": dict(sorted(self.down_since.items())),
            "backoff": {
                name: {"until": b.until, "failures": b.failures, "last_error": b.last_error}
                for name, b in sorted(self.backoff.items())
            },
            "last_submit": dict(sorted(self.last_submit.items())),
            "joined": dict(sorted(self.joined.items())),
            "homes": dict(sorted(self.homes.items())),
        }

    @classmethod
    def from_dict(cls, data: object, warnings: list[str] | None = None) -> Timers:
        """The timers in ``data``; a section or entry of the wrong type is left out and named in ``warnings``.

        Only that part is lost (one node's clock, one resource's back-off),
        which is always safe. Times are finite numbers of seconds.
        """
        notes = [] if warnings is None else warnings
        if data is None:
            return cls()
        if not isinstance(data, dict):
            notes.append(f"timers: expected a mapping, got {type(data).__name__}; all clocks and back-offs restart")
            return cls()

        def seconds(value: object) -> float | None:
            # 2**53: beyond any epoch time, and float() of a huge int overflows.
            if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > 2**53:
                return None
            return float(value) if abs(value) < float("inf") else None  # NaN fails this too

        def project(value: object) -> str | None:
            return value if isinstance(value, str) and len(value) <= 255 else None

        def backoff(value: object) -> Backoff | None:
            if not isinstance(value, dict):
                return None
            until, failures, error = seconds(value.get("until")), value.get("failures"), value.get("last_error", "")
            # The engine waits backoff_initial * 2**(failures - 1): a huge
            # count would take the pass minutes to compute.
            if until is None or isinstance(failures, bool) or not isinstance(failures, int):
                return None
            if not 0 <= failures <= 1000 or not isinstance(error, str):
                return None
            return Backoff(until, failures, error)

        def section(name: str, read, lost: str) -> dict:
            entries = data.get(name)
            if entries is None:
                return {}
            if not isinstance(entries, dict):
                notes.append(f"timers.{name}: expected a mapping, got {type(entries).__name__}; every {lost}")
                return {}
            out = {}
            for key, value in entries.items():
                item = read(value)
                if not isinstance(key, str) or len(key) > 255:
                    notes.append(f"timers.{name}: an entry whose key is not a name was dropped")
                elif item is None:
                    notes.append(f"timers.{name}[{key!r}]: unreadable {type(value).__name__}; its {lost}")
                else:
                    out[key] = item
            return out

        return cls(
            idle_since=section("idle_since", seconds, "idle clock restarts"),
            down_since=section("down_since", seconds, "down clock restarts"),
            backoff=section("backoff", backoff, "back-off is forgotten"),
            last_submit=section("last_submit", seconds, "last submit time is forgotten"),
            joined=section("joined", seconds, "node is taken for one that has not joined yet"),
            homes=section("homes", project, "project is forgotten"),
        )


@dataclass(frozen=True)
class Launch:
    resource: str
    count: int
    reason: str
    jobs: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # cloud nodes to power up (count of them); empty: new names

    def to_dict(self) -> dict:
        out = {"resource": self.resource, "count": self.count, "reason": self.reason, "jobs": list(self.jobs)}
        if self.names:
            out["names"] = list(self.names)
        return out


@dataclass(frozen=True)
class NodeAction:
    """drain, resume, delete, forget (remove a stale WLM node) or, for cloud
    nodes, power_down (delete the instance; the WLM keeps the node, off)."""

    action: str
    node: str
    resource: str | None
    reason: str


@dataclass(frozen=True)
class Unfit:
    job: str
    reason: str


@dataclass(frozen=True)
class Plan:
    launches: tuple[Launch, ...] = ()
    actions: tuple[NodeAction, ...] = ()
    unfit: tuple[Unfit, ...] = ()
    timers: Timers = field(default_factory=Timers)
    notes: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(self.launches or self.actions)

    def to_dict(self) -> dict:
        return {
            "launch": [x.to_dict() for x in self.launches],
            "actions": [
                {"action": a.action, "node": a.node, "resource": a.resource, "reason": a.reason} for a in self.actions
            ],
            "unfit_jobs": [{"job": u.job, "reason": u.reason} for u in self.unfit],
            "notes": list(self.notes),
        }
