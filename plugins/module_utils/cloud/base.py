# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interface every cloud provider implements.

Private to the dcaas.cluster collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Headroom, Instance, Resource


class CloudError(Exception):
    """A provider call failed.

    ``kind`` tells the engine what to do:
    - ``quota``: the project is full; back off this resource, try the next one;
    - ``capacity``: no host could take it (NoValidHost, zone full); same;
    - ``transient``: 5xx, timeout, connection reset; retry later with back-off;
    - ``config``: bad flavor/image/network; back off long and report loudly.
    """

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True)
class LaunchSpec:
    name: str
    resource: Resource
    user_data: str
    labels: dict[str, str] = field(default_factory=dict)


class CloudProvider:
    name = "base"

    def __init__(self, cluster: str, options: dict | None = None):
        self.cluster = cluster
        self.options = dict(options or {})

    def list_instances(self) -> list[Instance]:
        """Instances that carry this cluster's label, and only those."""
        raise NotImplementedError

    def create(self, spec: LaunchSpec) -> Instance:
        raise NotImplementedError

    def delete(self, instance: Instance) -> None:
        """Delete an instance; must refuse one without this cluster's label."""
        raise NotImplementedError

    def headroom(self, resource: Resource) -> Headroom:
        """What the resource's project can still take (quota minus usage)."""
        return Headroom()
