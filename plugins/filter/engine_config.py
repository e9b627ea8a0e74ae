# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: engine_config
short_description: Validate a Dynamic Cluster engine configuration and fill in its defaults
version_added: 0.1.0
description:
  - Checks the mapping with the engine's own schema and returns it with every default filled in.
  - On error, fails with every problem listed, each naming the field by its path and the fix, so a
    playbook can validate on the controller before it changes anything.
author:
  - dcaas.cluster developers (@dcaas-cluster)
options:
  _input:
    description: The engine configuration (see C(docs/engine-config.md)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Validate the engine configuration before touching any host
  ansible.builtin.set_fact:
    engine_config: "{{ dynamic_cluster_config | dcaas.cluster.engine_config }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The configuration with defaults filled in.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.dcaas.cluster.plugins.module_utils.config import SCHEMA, ConfigError, parse, validated


def engine_config(data):
    try:
        parse(data)
        return validated(data, SCHEMA)
    except ConfigError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"engine_config": engine_config}
