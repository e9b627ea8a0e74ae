#!/usr/bin/python
# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_info
short_description: Show a dynamic cluster's workers, queue and the engine's current plan
version_added: 0.1.0
description:
  - Observes the cluster as the engine does (workers from the cloud joined
    with the workload manager's view, pending and running jobs) and returns
    the plan the engine would carry out now, without acting and without
    writing the state file.
  - Useful in playbooks that wait for workers, and for AWX surveys.
author:
  - dcaas.cluster developers (@dcaas-cluster)
extends_documentation_fragment:
  - dcaas.cluster.engine
attributes:
  check_mode:
    support: full
    description: The module never changes anything.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
options:
  jobs:
    description: Also return the pending and running jobs, one entry each.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Read the cluster state on the head node
  dcaas.cluster.cluster_info:
    config_file: /etc/dcaas/engine.json
  register: cluster

- name: Wait until no worker is left
  dcaas.cluster.cluster_info:
    config_file: /etc/dcaas/engine.json
  register: cluster
  until: cluster.nodes | length == 0
  retries: 60
  delay: 10
"""

RETURN = r"""
nodes:
  description: Managed workers with their resource, state, jobs, address, zone and tenant.
  returned: always
  type: list
  elements: dict
  sample: [{name: demo-small-1a2b3c, resource: small, state: busy, jobs: ["12"], address: 10.89.0.5,
            zone: null, tenant: null}]
node_counts:
  description: Workers per resource and state.
  returned: always
  type: dict
pending_jobs:
  description: Number of pending jobs.
  returned: always
  type: int
running_jobs:
  description: Number of running jobs.
  returned: always
  type: int
plan:
  description: The plan the engine would carry out now (see M(dcaas.cluster.scale)).
  returned: always
  type: dict
unfit_jobs:
  description: Pending jobs that no resource can ever run, with the reason.
  returned: always
  type: list
  elements: dict
controls:
  description: The admin's controls in the state file.
  returned: always
  type: dict
jobs:
  description: The jobs, when O(jobs=true).
  returned: when O(jobs=true)
  type: list
  elements: dict
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


def main() -> None:
    argument_spec = dict(ENGINE_ARGS)
    argument_spec["jobs"] = {"type": "bool", "default": False}
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
        result = engine.run_once(check_mode=True)
    except Exception as exc:
        module.fail_json(msg=explain(exc, module.no_log_values).message)
    out = result.to_dict()
    extra = {}
    if p["jobs"]:
        extra["jobs"] = [
            {
                "id": j.id,
                "state": j.state,
                "user": j.user,
                "account": j.account,
                "partitions": list(j.partitions),
                "nodes": j.nodes,
                "cores": j.cores,
                "memory_mb": j.memory_mb,
                "reason": j.reason,
                "node_names": list(j.node_names),
            }
            for j in result.observed.jobs
        ]
    for warning in result.warnings:
        warn(module, warning)
    module.exit_json(
        changed=False,
        nodes=out["nodes"],
        node_counts=out["node_counts"],
        pending_jobs=out["pending_jobs"],
        running_jobs=out["running_jobs"],
        plan=out["plan"],
        unfit_jobs=out["plan"]["unfit_jobs"],
        controls=engine.store.load()[1].to_dict(),
        **extra,
    )


if __name__ == "__main__":
    main()
