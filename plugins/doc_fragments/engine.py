# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  config:
    description:
      - The engine configuration as a mapping (cluster name, workload manager,
        cloud provider, resources, timers, limits), the same document the
        C(dynamic_cluster) role renders to C(/etc/dcaas/engine.json).
      - See C(docs/engine-config.md) in the collection for every field.
      - It holds the cloud's credentials, so it is not logged on the host and the result shows it as
        C(VALUE_SPECIFIED_IN_NO_LOG_PARAMETER). Values of keys such as C(password), C(secret), C(token)
        or C(key) in the configuration, given here or in O(config_file), are masked wherever they would
        appear in the result; other values, such as names and numbers, are not, so node names and counts
        stay readable.
      - Mutually exclusive with O(config_file).
    type: dict
  config_file:
    description:
      - Path to the engine configuration file (JSON, or YAML with PyYAML
        installed) on the host the module runs on.
      - Mutually exclusive with O(config).
    type: path
  state_file:
    description:
      - Overrides C(state_file) of the configuration (timers and the admin's
        controls). The daemon and this module must share it.
    type: path
requirements:
  - The workload manager's commands (for Slurm C(squeue), C(sinfo), C(scontrol)) on the host, or
    C(wlm.command_prefix) in the configuration to reach them.
  - podman (podman-py) for the C(local) provider, openstacksdk for the C(openstack) provider.
"""
