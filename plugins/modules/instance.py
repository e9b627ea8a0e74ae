#!/usr/bin/python
# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: instance
short_description: Create or delete one labelled instance of a dynamic cluster (head, login, NFS or LDAP host)
version_added: 0.1.0
description:
  - Creates or deletes a single instance through the same provider layer the
    engine uses for workers (V(local) podman containers or V(openstack)
    servers), labelled with the cluster and its role, so the engine and the
    inventory plugin know it and never mistake it for a worker.
  - Idempotent by name - an instance of that name with this cluster's label is
    left as it is. An instance of that name without this cluster's label is
    never touched; the module fails instead.
author:
  - dcaas.cluster developers (@dcaas-cluster)
attributes:
  check_mode:
    support: full
    description: Reports whether the instance would be created or deleted.
  diff_mode:
    support: none
    description: Not supported.
options:
  cluster:
    description: The cluster name (the engine configuration's C(cluster)).
    type: str
    required: true
  name:
    description: Instance name, also its host name.
    type: str
    required: true
  role:
    description: What the instance is for; C(worker) is reserved for the engine.
    type: str
    default: head
    choices: [head, login, nfs, ldap, server]
  provider:
    description: The cloud provider.
    type: str
    default: local
    choices: [local, openstack]
  provider_options:
    description:
      - Provider settings, as C(cloud.options) of the engine configuration.
      - Not logged and not shown in the result, since it can hold the cloud's credentials.
    type: dict
    default: {}
  image:
    description: Image to boot. Required with O(state=present).
    type: str
  flavor:
    description: Flavor (OpenStack) or a label (local).
    type: str
    default: local
  cores:
    description: vCPUs of the flavor (counted against quotas).
    type: int
    default: 1
  memory_mb:
    description: Memory of the flavor in MB (counted against quotas).
    type: int
    default: 1024
  zone:
    description: Availability zone.
    type: str
  tenant:
    description: Cloud project.
    type: str
  options:
    description:
      - Provider settings for this instance only (for the local cloud e.g. C(mounts), C(volumes), C(cap_add);
        for OpenStack C(auth) or C(cloud) of another project).
      - Not logged and not shown in the result, like O(provider_options).
    type: dict
    default: {}
  user_data:
    description:
      - cloud-init user-data for the first boot.
      - Not logged and not shown in the result, since it can hold passwords and keys.
    type: str
    default: "#cloud-config\n{}\n"
  state:
    description: Whether the instance should exist.
    type: str
    default: present
    choices: [present, absent]
"""

EXAMPLES = r"""
- name: The Basic architecture's head node on the local cloud
  dcaas.cluster.instance:
    cluster: demo
    name: demo-head
    image: localhost/dcaas/base:bookworm
    provider_options:
      network: dcaas-demo
      volumes: {dcaas-demo-home: /home}
    options:
      mounts: {/run/podman/podman.sock: /run/podman/podman.sock}
  register: head

- name: Remove it
  dcaas.cluster.instance:
    cluster: demo
    name: demo-head
    state: absent
"""

RETURN = r"""
instance:
  description: The instance, when it exists.
  returned: when O(state=present)
  type: dict
  sample: {id: 3f2a..., name: demo-head, role: head, status: active, address: 10.89.0.2, zone: null, tenant: null}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import LaunchSpec
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import make_provider_for
from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import explain
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    LABEL_CLUSTER,
    LABEL_RESOURCE,
    LABEL_ROLE,
    Instance,
    Resource,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.options import NAME_HINT, NAME_RE
from ansible_collections.dcaas.cluster.plugins.module_utils.redact import hide_options


def as_dict(inst: Instance) -> dict:
    return {
        "id": inst.id,
        "name": inst.name,
        "role": inst.role,
        "status": inst.status.value,
        "address": inst.address,
        "zone": inst.zone,
        "tenant": inst.tenant,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "cluster": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "role": {"type": "str", "default": "head", "choices": ["head", "login", "nfs", "ldap", "server"]},
            "provider": {"type": "str", "default": "local", "choices": ["local", "openstack"]},
            "provider_options": {"type": "dict", "default": {}, "no_log": True},
            "image": {"type": "str"},
            "flavor": {"type": "str", "default": "local"},
            "cores": {"type": "int", "default": 1},
            "memory_mb": {"type": "int", "default": 1024},
            "zone": {"type": "str"},
            "tenant": {"type": "str"},
            "options": {"type": "dict", "default": {}, "no_log": True},
            "user_data": {"type": "str", "default": "#cloud-config\n{}\n", "no_log": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        },
        required_if=[("state", "present", ("image",))],
        supports_check_mode=True,
    )
    hidden = hide_options(module, ["provider_options", "options", "user_data"])
    p = module.params
    if not NAME_RE.match(p["cluster"]):
        module.fail_json(msg=f"cluster: {p['cluster']!r} is not a valid name; use {NAME_HINT}")
    res = Resource(
        name=p["name"],
        flavor=p["flavor"],
        image=p["image"] or "",
        cores=p["cores"],
        memory_mb=p["memory_mb"],
        zone=p["zone"],
        tenant=p["tenant"],
        options=hidden["options"],
    )
    try:
        cloud = make_provider_for(p["provider"], p["cluster"], hidden["provider_options"], [res])
        existing = next((i for i in cloud.list_instances() if i.name == p["name"]), None)
        if p["state"] == "absent":
            if existing is not None and not module.check_mode:
                cloud.delete(existing)
            module.exit_json(changed=existing is not None)
        if existing is not None:
            module.exit_json(changed=False, instance=as_dict(existing))
        if module.check_mode:
            module.exit_json(changed=True, instance={"name": p["name"], "role": p["role"], "status": "planned"})
        labels = {LABEL_CLUSTER: p["cluster"], LABEL_ROLE: p["role"], LABEL_RESOURCE: p["name"]}
        inst = cloud.create(LaunchSpec(name=p["name"], resource=res, user_data=hidden["user_data"], labels=labels))
    except Exception as exc:
        module.fail_json(msg=explain(exc, module.no_log_values, during=f"instance {p['name']!r}").message)
    module.exit_json(changed=True, instance=as_dict(inst))


if __name__ == "__main__":
    main()
