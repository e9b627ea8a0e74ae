# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interface every workload-manager adapter implements.

Private to the dcaas.cluster collection.
"""

from __future__ import annotations

import enum

from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Job, Resource, WlmNode
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import Runner


class Capability(str, enum.Enum):
    """What an adapter can do beyond the common core; the engine asks, never the WLM's name."""

    # wlm.nodes: cloud: the WLM lists every possible node ahead and powers
    # nodes up and down itself (power_up, power_down).
    CLOUD_NODES = "cloud_nodes"
    # A cheap read of the pending job ids between passes (pending_ids).
    PENDING_WATCH = "pending_watch"
    # The WLM pins node addresses and must be told a new one (update_address).
    ADDRESS_UPDATES = "address_updates"
    # Jobs can ask for node features, and workers carry node_features().
    FEATURES = "features"
    # The head must add a new worker before the worker can join (admit):
    # the WLM accepts only hosts it already lists.
    ADMITS = "admits"


class WorkloadManager:
    """Reads jobs and nodes from a WLM and changes node state.

    Adapters parse machine-readable output and run every command through
    ``self.runner``. They report only jobs that are pending or running.

    An adapter declares, as class attributes, its registry ``name``, its
    ``capabilities``, the spec of its ``wlm.options`` (``OPTION_SPEC``) and
    of the keys it reads from a resource's ``options``
    (``RESOURCE_OPTION_SPEC``), both in the config schema's terms, so a
    config is checked against the adapter it names when it loads.
    """

    name = "base"
    capabilities: frozenset[Capability] = frozenset()
    OPTION_SPEC: dict = {}
    RESOURCE_OPTION_SPEC: dict = {}

    def __init__(
        self,
        runner: Runner,
        options: dict | None = None,
        cluster: str = "cluster",
        cloud_nodes: bool = False,
    ):
        refused = self.cloud_nodes_refused()
        if cloud_nodes and refused:
            raise ValueError(refused)
        self.runner = runner
        self.options = dict(options or {})
        self.cluster = cluster
        self.cloud_nodes = cloud_nodes  # wlm.nodes: cloud

    @classmethod
    def supports(cls, capability: Capability) -> bool:
        return capability in cls.capabilities

    @classmethod
    def cloud_nodes_refused(cls) -> str | None:
        """Why ``wlm.nodes: cloud`` cannot be used with this adapter, or None when it can."""
        if cls.supports(Capability.CLOUD_NODES):
            return None
        return f"wlm.nodes: {cls.name} has no cloud nodes; use wlm.nodes: dynamic"

    def jobs(self) -> list[Job]:
        raise NotImplementedError

    def nodes(self) -> list[WlmNode]:
        raise NotImplementedError

    def pending_ids(self) -> frozenset[str] | None:
        """The ids of pending jobs, read as cheaply as the WLM allows, or None.

        The daemon asks this between full passes, every ``timers.watch``
        seconds, and runs a pass at once when a job id it has not seen
        pending before appears, so a job submitted to an idle cluster is
        noticed within seconds without full passes that often. None means
        the adapter has no cheap way; the daemon then waits for the interval.
        """
        return None

    def drain(self, node: str, reason: str) -> None:
        raise NotImplementedError

    def resume(self, node: str) -> None:
        raise NotImplementedError

    def remove(self, node: str) -> None:
        """Forget a node that is gone (dynamic node delete / qmgr delete node)."""
        raise NotImplementedError

    def power_down(self, node: str, force: bool = False) -> None:
        """Cloud nodes: tell the WLM a node goes off; ``force`` requeues what it placed there."""
        raise NotImplementedError

    def power_up(self, node: str) -> None:
        """Cloud nodes: tell the WLM an off node is being started though it placed no job there."""
        raise NotImplementedError

    def cloud_nodes_hint(self) -> str:
        """Cloud nodes: what to do when the WLM lists no node of a resource (the engine warns)."""
        return f"declare every resource's cloud nodes in {self.name}'s own configuration"

    def update_address(self, node: str, address: str) -> None:
        """Tell the WLM a node's new address (an instance restarted with a new IP).

        WLMs that resolve node names on every contact need nothing here.
        """
        return None

    def admit(self, resource: Resource, node: str, address: str) -> None:
        """ADMITS: add a new worker that the WLM does not list yet.

        The engine calls it on every pass for each started worker of
        ``resource`` that has an address and that the WLM does not list, so
        it must be harmless to repeat; it may do nothing yet (the worker's
        name does not resolve on the WLM's host) and be asked again.
        """
        raise NotImplementedError

    def join_config(self, resource: Resource, node_name: str) -> dict:
        """What a new worker needs to join, rendered into its cloud-init user-data.

        Returns a dict with ``write_files`` (list of {path, content, permissions})
        and ``runcmd`` (list of argv lists), in cloud-init's own terms.
        """
        raise NotImplementedError

    def node_features(self, resource: Resource) -> list[str]:
        """Features every worker of ``resource`` carries in the WLM."""
        return naming.worker_features(resource.name, resource.features)
