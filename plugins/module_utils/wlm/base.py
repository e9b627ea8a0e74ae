# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interface every workload-manager adapter implements.

Private to the dcaas.cluster collection.
"""

from __future__ import annotations

from ansible_collections.dcaas.cluster.plugins.module_utils.model import Job, Resource, WlmNode
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import Runner


class WorkloadManager:
    """Reads jobs and nodes from a WLM and changes node state.

    Adapters parse machine-readable output and run every command through
    ``self.runner``. They report only jobs that are pending or running.
    """

    name = "base"
    cloud_nodes = False  # wlm.nodes: cloud (the WLM knows every node and powers them up and down)

    def __init__(self, runner: Runner, options: dict | None = None, cluster: str = "cluster"):
        self.runner = runner
        self.options = dict(options or {})
        self.cluster = cluster

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

    def update_address(self, node: str, address: str) -> None:
        """Tell the WLM a node's new address (an instance restarted with a new IP).

        WLMs that resolve node names on every contact need nothing here.
        """
        return None

    def join_config(self, resource: Resource, node_name: str) -> dict:
        """What a new worker needs to join, rendered into its cloud-init user-data.

        Returns a dict with ``write_files`` (list of {path, content, permissions})
        and ``runcmd`` (list of argv lists), in cloud-init's own terms.
        """
        raise NotImplementedError

    def node_features(self, resource: Resource) -> list[str]:
        """Features every worker of ``resource`` carries in the WLM."""
        return ["dcaas", f"dcaas_{resource.name}", *resource.features]
