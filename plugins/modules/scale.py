#!/usr/bin/python
# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scale
short_description: Run one reconcile pass of the Dynamic Cluster engine
version_added: 0.1.0
description:
  - Reads the job queue and nodes from the workload manager (Slurm) and this
    cluster's instances from the cloud, decides with the engine's scaling
    policy, and carries out the plan - launches workers for pending jobs,
    drains idle ones past the idle timeout, deletes drained, failed or
    never-booted ones - exactly as one cycle of the daemon on the head node.
  - Never deletes a node that runs a job and never touches an instance
    without this cluster's label.
  - In check mode returns the plan without acting.
  - Optionally changes the admin's controls (auto mode, freeze, drain or
    restore a resource, hold or unhold a node) first; they persist in the
    state file that the daemon shares.
author:
  - dcaas.cluster developers (@dcaas-cluster)
extends_documentation_fragment:
  - dcaas.cluster.engine
attributes:
  check_mode:
    support: full
    description: Returns the plan that would be carried out; nothing changes, the state file is not written.
  diff_mode:
    support: full
    description: Shows node counts per resource before and as planned after the pass.
options:
  controls:
    description:
      - Changes to the admin's controls, applied before the pass and kept in the state file.
    type: dict
    suboptions:
      auto:
        description: Automatic mode. When V(false) the engine plans and reports but acts on nothing.
        type: bool
      frozen:
        description: When V(true) the cluster keeps its size - no launch, drain or delete.
        type: bool
      drain_resources:
        description: Resources to drain - no new launches, their idle nodes are drained and deleted.
        type: list
        elements: str
        default: []
      restore_resources:
        description: Resources to put back in service.
        type: list
        elements: str
        default: []
      hold_nodes:
        description: Nodes the engine must never drain or delete.
        type: list
        elements: str
        default: []
      unhold_nodes:
        description: Nodes to release from hold.
        type: list
        elements: str
        default: []
"""

EXAMPLES = r"""
- name: Scale the cluster once, from the head node
  dcaas.cluster.scale:
    config_file: /etc/dcaas/engine.json
  delegate_to: head

- name: Show what the engine would do, without doing it
  dcaas.cluster.scale:
    config_file: /etc/dcaas/engine.json
  check_mode: true
  register: plan

- name: Drain the short-sa resource before maintenance of its zone
  dcaas.cluster.scale:
    config_file: /etc/dcaas/engine.json
    controls:
      drain_resources: [short-sa]

- name: Scale a local (podman) cluster from the controller
  dcaas.cluster.scale:
    config:
      cluster: demo
      wlm:
        type: slurm
        command_prefix: [podman, exec, demo-head]
      cloud:
        provider: local
      resources:
        - name: small
          flavor: local
          image: localhost/dcaas/slurm-worker:bookworm
          cores: 2
          memory_mb: 2048
          max: 4
"""

RETURN = r"""
plan:
  description: What the policy decided.
  returned: always
  type: dict
  contains:
    launch:
      description: Launches per resource, with the reason and the jobs they are for.
      type: list
      elements: dict
    actions:
      description: Node actions (drain, resume, delete, forget) with reasons.
      type: list
      elements: dict
    unfit_jobs:
      description: Pending jobs that no resource can ever run, with the reason.
      type: list
      elements: dict
    notes:
      description: Back-offs, min floors, freeze.
      type: list
      elements: str
  sample:
    launch: [{resource: small, count: 2, reason: "5 pending job(s)", jobs: ["12", "13"]}]
    actions: [{action: drain, node: demo-small-1a2b3c, resource: small, reason: "idle for 612s"}]
    unfit_jobs: [{job: "14", reason: "needs 64 cores and 0 MB per node; ..."}]
    notes: []
launched:
  description: Names of the workers launched by this pass.
  returned: always
  type: list
  elements: str
done:
  description: Node actions carried out.
  returned: always
  type: list
  elements: dict
errors:
  description: Launches or actions that failed; launches back off and fall through to the next resource.
  returned: always
  type: list
  elements: str
protected:
  description:
    - Why the pass was in protected mode, or an empty list. While what the
      workload manager reports contradicts itself (a running job on a node
      its node list does not show, a running job on no node), the engine
      drains, deletes and powers down nothing; it launches for waiting jobs
      as usual, and leaves the mode by itself once the answers agree.
  returned: always
  type: list
  elements: str
  sample: ["job 7 runs on hpc-small-1a2b3c, which the WLM's node list does not show"]
unfit_jobs:
  description: Same as RV(plan.unfit_jobs), for convenience.
  returned: always
  type: list
  elements: dict
nodes:
  description: The managed workers as observed before the pass.
  returned: always
  type: list
  elements: dict
node_counts:
  description: Observed workers per resource and state.
  returned: always
  type: dict
  sample: {small: {idle: 1, busy: 2}}
pending_jobs:
  description: Number of pending jobs seen.
  returned: always
  type: int
running_jobs:
  description: Number of running jobs seen.
  returned: always
  type: int
controls:
  description: The admin's controls in force for this pass.
  returned: always
  type: dict
  sample: {auto: true, frozen: false, drained_resources: [], held_nodes: []}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import (
    ENGINE_ARGS,
    ENGINE_MUTUALLY_EXCLUSIVE,
    ENGINE_REQUIRED_ONE_OF,
    build_engine,
    explain,
    load_config,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.redact import config_secrets, hide_options, warn
from ansible_collections.dcaas.cluster.plugins.module_utils.state import change_controls


def _counts(result: dict, plan: dict | None = None) -> dict:
    counts = {res: sum(states.values()) for res, states in result["node_counts"].items()}
    if plan is not None:
        for launch in plan["launch"]:
            counts[launch["resource"]] = counts.get(launch["resource"], 0) + launch["count"]
        for action in plan["actions"]:
            if action["action"] == "delete" and action["resource"]:
                counts[action["resource"]] -= 1
    return dict(sorted(counts.items()))


def main() -> None:
    argument_spec = dict(ENGINE_ARGS)
    argument_spec["controls"] = {
        "type": "dict",
        "options": {
            "auto": {"type": "bool"},
            "frozen": {"type": "bool"},
            "drain_resources": {"type": "list", "elements": "str", "default": []},
            "restore_resources": {"type": "list", "elements": "str", "default": []},
            "hold_nodes": {"type": "list", "elements": "str", "default": []},
            "unhold_nodes": {"type": "list", "elements": "str", "default": []},
        },
    }
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=ENGINE_MUTUALLY_EXCLUSIVE,
        required_one_of=ENGINE_REQUIRED_ONE_OF,
        supports_check_mode=True,
    )
    config = hide_options(module, ["config"])["config"]
    p = module.params
    try:
        cfg = load_config(config, p["config_file"], p["state_file"])
        module.no_log_values |= config_secrets(cfg)
        engine = build_engine(cfg)
        controls, controls_changed = None, False
        if p["controls"]:
            named = p["controls"]["drain_resources"] + p["controls"]["restore_resources"]
            unknown = [r for r in named if not cfg.resource(r)]
            if unknown:
                configured = ", ".join(r.name for r in cfg.resources)
                module.fail_json(msg=f"controls: unknown resource(s) {', '.join(unknown)}; configured: {configured}")
            controls, controls_changed = change_controls(engine.store, p["controls"], write=not module.check_mode)
        result = engine.run_once(check_mode=module.check_mode, controls=controls)
    except Exception as exc:
        module.fail_json(msg=explain(exc, module.no_log_values).message)

    out = result.to_dict()
    if controls is None:
        controls = engine.store.load()[1]
    for warning in result.warnings:
        warn(module, warning)
    for error in result.errors:
        warn(module, error)
    diff = {"before": _counts(out), "after": _counts(out, out["plan"])}
    module.exit_json(
        changed=result.changed or controls_changed,
        unfit_jobs=out["plan"]["unfit_jobs"],
        controls=controls.to_dict(),
        diff=diff,
        **out,
    )


if __name__ == "__main__":
    main()
