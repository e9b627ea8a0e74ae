# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One reconcile pass: observe, decide, act. Shared by every front end.

Private to the dcaas.cluster collection. The scaling module runs one pass
(check mode stops after deciding), the inventory plugin only observes, and
the daemon runs passes in a loop.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError, CloudProvider, LaunchSpec
from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config
from ansible_collections.dcaas.cluster.plugins.module_utils.errors import clip, describe
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    LABEL_CLUSTER,
    LABEL_RESOURCE,
    LABEL_ROLE,
    ROLE_WORKER,
    Controls,
    Headroom,
    Instance,
    InstanceStatus,
    Node,
    NodeState,
    Observed,
    Plan,
    Resource,
    Timers,
    WlmNode,
    WlmState,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.observe import merge
from ansible_collections.dcaas.cluster.plugins.module_utils.policy import (
    backoff_after_failure,
    backoff_failed_boots,
    decide,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError, Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore
from ansible_collections.dcaas.cluster.plugins.module_utils.userdata import render as render_user_data
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm import registry
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import Capability, WorkloadManager

LogFn = Callable[..., None]
LISTED_HOMES = 5  # lost resources named in the refusal


def _no_log(event: str, **fields) -> None:
    return None


def make_wlm(config: Config) -> WorkloadManager:
    runner = Runner(prefix=config.wlm_command_prefix)
    return registry.make(
        config.wlm_type, runner, config.wlm_options, cluster=config.cluster, cloud_nodes=config.wlm_nodes == "cloud"
    )


def make_provider_for(provider: str, cluster: str, options: dict | None, resources=()) -> CloudProvider:
    """A cloud provider by name; raises CloudError('config') for bad options."""
    if provider == "local":
        from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.local import LocalProvider

        return LocalProvider(cluster, options)
    if provider == "openstack":
        from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.openstack import OpenStackProvider

        return OpenStackProvider(cluster, options, resources=resources)
    raise ValueError(f"cloud.provider: unknown provider {provider!r}; use local or openstack")


def make_provider(config: Config) -> CloudProvider:
    return make_provider_for(config.provider, config.cluster, config.provider_options, config.resources)


@dataclass
class Result:
    observed: Observed
    plan: Plan
    launched: list[str] = field(default_factory=list)
    done: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    acted: bool = False

    @property
    def protected(self) -> tuple[str, ...]:
        """Why the pass was in protected mode (what it read contradicted itself), or ()."""
        return self.observed.contradictions

    @property
    def changed(self) -> bool:
        return bool(self.launched or self.done) if self.acted else self.plan.changes

    def to_dict(self) -> dict:
        counts: dict[str, dict[str, int]] = {}
        for n in self.observed.nodes:
            counts.setdefault(n.resource, {}).setdefault(n.state.value, 0)
            counts[n.resource][n.state.value] += 1
        pending = sum(1 for j in self.observed.jobs if j.pending)
        return {
            "plan": self.plan.to_dict(),
            "launched": self.launched,
            "done": self.done,
            "errors": self.errors,
            "warnings": self.warnings,
            "protected": list(self.protected),
            "nodes": [
                {
                    "name": n.name,
                    "resource": n.resource,
                    "state": n.state.value,
                    "jobs": list(n.jobs),
                    "address": n.address,
                    "zone": n.zone,
                    "tenant": n.tenant,
                    "instance_id": n.instance_id,
                    "cores": n.cores,
                    "memory_mb": n.memory_mb,
                    "created": n.created,
                    "reason": n.reason,
                }
                for n in self.observed.nodes
            ],
            "node_counts": counts,
            "pending_jobs": pending,
            "running_jobs": sum(1 for j in self.observed.jobs if not j.pending),
        }


class Engine:
    def __init__(
        self,
        config: Config,
        wlm: WorkloadManager,
        cloud: CloudProvider,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        log: LogFn = _no_log,
    ):
        self.config = config
        self.wlm = wlm
        self.cloud = cloud
        self.store = store or StateStore(config.state_file)
        self.clock = clock
        self.log = log
        # The state file's problems last pass logged: a daemon logs each once
        # (and when it clears), not at every pass until an admin acts.
        self._state_warnings: frozenset[str] = frozenset()

    # --- observe ---------------------------------------------------------
    def observe(self) -> Observed:
        instances = self.cloud.list_instances()
        wlm_nodes = self.wlm.nodes()
        jobs = self.wlm.jobs()
        headroom: dict[str, Headroom] = {}
        for res in self.config.resources:
            try:
                headroom[res.name] = self.cloud.headroom(res)
            except CloudError as exc:
                # Unknown headroom is not zero headroom: a launch that hits the
                # quota is caught and backs off anyway.
                self.log("headroom_unknown", resource=res.name, error=str(exc))
        cloud = self.config.wlm_nodes == "cloud"
        return merge(
            instances, wlm_nodes, jobs, self.config.resources, self.config.cluster, headroom, cloud_nodes=cloud
        )

    # --- one pass --------------------------------------------------------
    def run_once(self, check_mode: bool = False, controls: Controls | None = None) -> Result:
        """One pass. ``controls`` overrides the stored ones (check mode of a control change).

        Check mode reads the state file but takes no lock and writes nothing.
        """
        with contextlib.nullcontext() if check_mode else self.store.lock():
            timers, stored, warnings = self.store.load()
            controls = controls or stored
            self._log_state_warnings(warnings)
            now = self.clock()
            observed = _with_vanished(self.observe(), timers)
            self._check_homes(observed, timers)
            warnings = [*warnings, *self._cloud_node_warnings(observed)]
            timers = backoff_failed_boots(self.config, observed, timers, now)
            plan = decide(observed, self.config, now, timers, controls)
            homes = {n.resource: n.tenant or "" for n in observed.nodes if n.instance_id is not None}
            plan = replace(plan, timers=replace(plan.timers, joined=_joined(observed, timers, now), homes=homes))
            result = Result(observed=observed, plan=plan, warnings=warnings)
            if result.protected:
                result.warnings.append(
                    "protected mode: what the WLM reported contradicts itself, so no node is drained, deleted "
                    "or powered down in this pass: " + "; ".join(result.protected)
                )
                self.log("protected_mode", reasons=list(result.protected))
            for u in plan.unfit:
                self.log("job_unfit", job=u.job, reason=u.reason)
            if check_mode or not controls.auto:
                if not controls.auto and plan.changes:
                    result.warnings.append("auto mode is off: the plan was not carried out")
                return result
            timers = self._act(result, controls, now)
            self.store.save(timers, controls)
            return result

    def _act(self, result: Result, controls: Controls, now: float) -> Timers:
        """Carry out the plan. Never raises: what fails is recorded in the
        result and the rest goes on, so one node the engine cannot handle
        (a name the WLM refuses, a cloud error) does not stop the others,
        and the timers (back-offs) this pass learnt are always returned."""
        plan = result.plan
        timers = plan.timers
        nodes = {n.name: n for n in result.observed.nodes}
        if not controls.frozen:
            for name, address in result.observed.moved:
                step = functools.partial(self.wlm.update_address, name, address)
                if self._try(result, "update_address", name, step):
                    result.done.append({"action": "update_address", "node": name, "reason": f"now at {address}"})
                    self.log("update_address", node=name, address=address)
        if self.wlm.supports(Capability.ADMITS):
            self._admit(result, nodes.values())
        if not controls.frozen and not result.protected:
            for name in result.observed.powered_off:
                self._delete_powered_off(result, nodes[name], "the WLM powered it down")
        powered_down = []
        deletable: set[str] | None = None
        for action in plan.actions:
            node = nodes.get(action.node)
            if action.action == "power_down" and node is not None:
                # Jobs placed on a node that did not boot, or is down,
                # cannot run there: requeue them (force). An idle node's
                # power-down waits for any job placed there meanwhile.
                force = node.state in (NodeState.DOWN, NodeState.STARTING)
                step = functools.partial(self.wlm.power_down, node.name, force=force)
                powered_down.append(node)
            elif action.action == "drain":
                step = functools.partial(self.wlm.drain, action.node, naming.drain_reason(action.reason))
            elif action.action == "resume":
                step = functools.partial(self.wlm.resume, action.node)
            elif action.action == "forget":
                step = functools.partial(self.wlm.remove, action.node)
            elif action.action == "delete" and node is not None:
                if deletable is None:
                    doomed = [nodes[a.node] for a in plan.actions if a.action == "delete" and a.node in nodes]
                    deletable = self._still_deletable(result, doomed)
                if node.name not in deletable:
                    continue
                step = functools.partial(self._delete, node)
            else:
                continue
            if not self._try(result, action.action, action.node, step):
                if action.action == "power_down" and node is not None:
                    powered_down.remove(node)
                continue
            result.done.append({"action": action.action, "node": action.node, "reason": action.reason})
            self.log(action.action, node=action.node, resource=action.resource, reason=action.reason)
        if any(n.instance_id is not None for n in powered_down):
            # The instance goes only once the WLM says the node is going off:
            # a job the WLM placed there after this pass looked keeps it up,
            # and the WLM powers it down when that job ends (a later pass
            # deletes it).
            going: set[str] = set()
            off = (WlmState.OFF, WlmState.POWERING_DOWN)
            self._try(
                result,
                "re-read nodes after power-down",
                None,
                lambda: going.update(n.name for n in self.wlm.nodes() if n.state in off),
            )
            for node in powered_down:
                if node.instance_id is not None and node.name in going:
                    self._delete_powered_off(result, node, "powered down")
        result.acted = True
        return self._launch_all(result, controls, now, timers, nodes)

    def _launch_all(
        self, result: Result, controls: Controls, now: float, timers: Timers, nodes: dict[str, Node]
    ) -> Timers:
        """Launch; a resource that fails backs off and its demand is planned
        again, so it falls through to the next resource in the same pass.

        A successful create does not end a back-off: an instance that then
        fails to boot (NoValidHost) must count as the next failure, so the
        back-off doubles. The policy forgets it once a node launched after
        it has joined the WLM."""
        launches = list(result.plan.launches)
        for _round in range(len(self.config.resources) + 1):
            failed = False
            for launch in launches:
                res = self.config.resource(launch.resource)
                if res is None:
                    continue
                names = list(launch.names) or [None] * launch.count
                for name in names:
                    try:
                        inst = self._power_up(res, name, nodes.get(name)) if name else self._launch(res)
                    except CloudError as exc:
                        result.errors.append(f"launch on resource {res.name!r}: {exc}")
                        self.log("launch_failed", resource=res.name, kind=exc.kind, error=str(exc))
                        timers = backoff_after_failure(timers, res.name, str(exc), now, self.config)
                        failed = True
                        break
                    except Exception as exc:  # one node must not stop the pass
                        result.errors.append(f"power up {name}: {describe(exc)}")
                        self.log("action_failed", action="power_up", node=name, error=describe(exc))
                        continue
                    result.launched.append(inst.name)
                    self.log("launch", node=inst.name, resource=res.name, reason=launch.reason)
                    if res.name not in timers.homes:
                        timers = replace(timers, homes={**timers.homes, res.name: inst.tenant or ""})
            if not failed:
                break
            try:
                observed = self.observe()
            except Exception as exc:  # the back-off learnt so far must be kept
                result.errors.append(f"re-read after a failed launch: {describe(exc)}")
                self.log("action_failed", action="observe", node=None, error=describe(exc))
                break
            nodes = {n.name: n for n in observed.nodes}
            replan = decide(observed, self.config, now, timers, controls)
            launches = list(replan.launches)
            result.plan = replace(result.plan, notes=(*result.plan.notes, *replan.notes))
        return timers

    def _admit(self, result: Result, nodes) -> None:
        """Add started workers the WLM does not list yet (Capability.ADMITS).

        Not stopped by frozen or protected mode: it finishes a launch already
        made and changes no instance and no job.
        """
        for node in nodes:
            res = self.config.resource(node.resource)
            if node.state is not NodeState.STARTING or node.in_wlm or not node.address or res is None:
                continue
            step = functools.partial(self.wlm.admit, res, node.name, node.address)
            if self._try(result, "admit", node.name, step):
                result.done.append({"action": "admit", "node": node.name, "reason": f"started at {node.address}"})
                self.log("admit", node=node.name, resource=node.resource, address=node.address)

    def _try(self, result: Result, action: str, node: str | None, step: Callable[[], object]) -> bool:
        """Run one step of the plan; record and log what fails instead of raising."""
        try:
            step()
        except Exception as exc:  # a node the engine cannot handle must not stop the pass
            what = f"{action} {node}" if node else action
            result.errors.append(f"{what}: {describe(exc)}")
            self.log("action_failed", action=action, node=node, error=describe(exc))
            return False
        return True

    def _still_deletable(self, result: Result, nodes: list[Node]) -> set[str]:
        """The nodes planned for deletion that a fresh look still shows free.

        The instance is deleted before the WLM forgets the node (see
        _delete), so the WLM's refusal to forget a busy node is no longer
        the last guard: this is. A node is deleted only if no running job
        names it and the WLM lists it drained or down, or not at all; a
        node that joined, or took a job, since the pass looked stays. When
        the look fails, nothing is deleted in this pass.
        """
        fresh: dict[str, WlmNode] = {}
        busy: set[str] = set()

        def look() -> None:
            fresh.update((n.name, n) for n in self.wlm.nodes())
            busy.update(name for job in self.wlm.jobs() if not job.pending for name in job.node_names)

        if not self._try(result, "re-read the WLM before deleting", None, look):
            return set()
        ok = set()
        for node in nodes:
            wlm = fresh.get(node.name)
            if node.name in busy or (wlm is not None and (wlm.jobs or wlm.cores_alloc)):
                continue
            if wlm is None or wlm.state in (WlmState.DRAINED, WlmState.DOWN):
                ok.add(node.name)
        return ok

    def _power_up(self, res: Resource, name: str, node: Node | None) -> Instance:
        """Start the instance of an off cloud node.

        The WLM powers up the nodes it placed jobs on itself; one it placed
        none on (``min``, pre-warm) is powered up in the WLM first, and
        powered down again (force: a job placed meanwhile goes back to the
        queue) when its instance cannot be started.
        """
        if node is None or node.state is not NodeState.OFF or node.jobs:
            return self._launch(res, name)
        self.wlm.power_up(name)
        try:
            return self._launch(res, name)
        except CloudError:
            with contextlib.suppress(CommandError):
                self.wlm.power_down(name, force=True)
            raise

    def _launch(self, res: Resource, name: str | None = None) -> Instance:
        """Start a worker: a cloud node under its WLM name, or a dynamic one under a new name."""
        name = name or naming.worker_name(self.config.cluster, res.name)
        try:
            user_data = render_user_data(self.wlm.join_config(res, name), self.config.worker_user_data)
        except ValueError as exc:
            # A join configuration that cannot be rendered is a config error
            # of this resource: back off like any failed launch.
            raise CloudError("config", f"resource {res.name!r}: cannot render worker user-data: {exc}") from None
        labels = {LABEL_CLUSTER: self.config.cluster, LABEL_ROLE: ROLE_WORKER, LABEL_RESOURCE: res.name}
        return self.cloud.create(LaunchSpec(name=name, resource=res, user_data=user_data, labels=labels))

    def _delete_powered_off(self, result: Result, node: Node, why: str) -> None:
        """Delete the instance of a cloud node the WLM has powered down; the WLM keeps the node."""
        if node.instance_id is None:
            return
        try:
            self.cloud.delete(_instance_of(node))
        except CloudError as exc:
            result.errors.append(f"delete instance of {node.name}: {exc}")
            self.log("action_failed", action="delete_instance", node=node.name, error=str(exc))
            return
        result.done.append({"action": "delete_instance", "node": node.name, "reason": why})
        self.log("delete_instance", node=node.name, resource=node.resource, reason=why)

    def _log_state_warnings(self, warnings: list[str]) -> None:
        """Log what is new since the last pass, and what cleared. The result
        still carries every warning at every pass (status API, scale)."""
        for w in warnings:
            if w not in self._state_warnings:
                self.log("state_warning", message=w)
        for w in sorted(self._state_warnings.difference(warnings)):
            self.log("state_warning_cleared", message=w)
        self._state_warnings = frozenset(warnings)

    def _check_homes(self, observed: Observed, timers: Timers) -> None:
        """Refuse a config that dropped a resource whose instances the cloud
        no longer lists: the engine would never see them again. (A resource
        dropped while its instances are still listed, as in a shared
        project, is retired by the policy as usual.)"""
        listed = {n.resource for n in observed.nodes}
        lost = {
            name: project
            for name, project in timers.homes.items()
            if self.config.resource(name) is None and name not in listed
        }
        if lost:
            # Keys are names of at most 255 characters (Timers.from_dict), but
            # a file can hold any number: name a few.
            named = sorted(lost.items())[:LISTED_HOMES]
            more = f" and {len(lost) - len(named)} more" if len(lost) > len(named) else ""
            where = "; ".join(f"resource {name!r} in project {project or 'default'!r}" for name, project in named)
            keys = ", ".join(json.dumps(name) for name, _project in named)
            raise CloudError(
                "config",
                f"the configuration no longer has {where}{more}, whose instances the cloud no longer lists here: "
                "they would be left running. Put the resource back with max: 0 until its nodes are gone, or add "
                "the project to cloud.options.tenants so that the engine finds and retires them. Only if you know "
                "they are gone already: stop the engine (systemctl stop dcaas-engine), delete "
                f"{keys}{more} from timers.homes in the state file {clip(self.store.path)}, and start it again",
            )

    def _cloud_node_warnings(self, observed: Observed) -> list[str]:
        """With cloud nodes, a resource the WLM lists no node of cannot grow: say how to fix it."""
        if self.config.wlm_nodes != "cloud":
            return []
        known = {n.resource for n in observed.nodes}
        out = []
        for res in self.config.resources:
            if res.max > 0 and res.name not in known:
                names = naming.cloud_node_range(self.config.cluster, res.name, res.max)
                out.append(
                    f"wlm.nodes is 'cloud' but the WLM lists no node of resource {res.name!r} ({names}): "
                    + self.wlm.cloud_nodes_hint()
                )
        return out

    def _delete(self, node: Node) -> None:
        """The instance goes first, then the WLM forgets the node.

        In this order an engine that stops between the two steps leaves a
        WLM node with no instance, which the next pass forgets; the other
        order would leave a live server that the WLM does not list, counted
        as booting until boot_timeout. The provider re-reads the instance
        and checks its labels before deleting it.
        """
        if node.instance_id is not None:
            self.cloud.delete(_instance_of(node))
        if node.in_wlm:
            self.wlm.remove(node.name)


def _was_joined(node: Node, timers: Timers) -> bool:
    """Whether this instance of the node has been in the WLM's node list. An
    instance created after the name was first seen there is a new one (a
    cloud node powered down and up again): it has not joined yet."""
    since = timers.joined.get(node.name)
    return since is not None and node.created <= since


def _joined(observed: Observed, timers: Timers, now: float) -> dict[str, float]:
    """The workers that have been in the WLM's node list, while their instance exists."""
    out = {}
    for n in observed.nodes:
        if n.instance_id is None:
            continue
        if _was_joined(n, timers):
            out[n.name] = timers.joined[n.name]
        elif n.in_wlm:
            out[n.name] = now
    return out


def _with_vanished(observed: Observed, timers: Timers) -> Observed:
    """A worker that joined the WLM and is no longer in its node list,
    though the engine did not remove it, makes the node list one not to
    trust: without this, a list cut short in both the job and the node answer (they
    then agree) would make a busy worker look like one that never joined,
    to be replaced after boot_timeout. The engine is in protected mode
    until the WLM lists the node again or its instance is gone (an admin
    deleted it)."""
    if not timers.joined:
        return observed
    gone = sorted(
        n.name for n in observed.nodes if not n.in_wlm and n.state is NodeState.STARTING and _was_joined(n, timers)
    )
    if not gone:
        return observed
    names = ", ".join(gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else "")
    why = f"{names}: joined the WLM, and its node list no longer shows them"
    return replace(observed, contradictions=(*observed.contradictions, why))


def _instance_of(node: Node) -> Instance:
    """The instance behind a node, as the provider's delete takes it (it re-reads and checks it)."""
    return Instance(
        id=node.instance_id,
        name=node.name,
        resource=node.resource,
        status=InstanceStatus.DELETING,
        created=node.created,
        tenant=node.tenant,
        zone=node.zone,
    )
