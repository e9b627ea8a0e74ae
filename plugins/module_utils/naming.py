# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the engine names workers, their features and its drains: the one place.

Private to the dcaas.cluster collection. The policy, the observer, every
workload-manager adapter and the roles (through the ``worker_naming``
filter) use these, so a rule changes here and nowhere else.

- A dynamic worker is ``<cluster>-<resource>-<6 hex>``: a valid host name
  (at most 63 characters) and a valid node name in every supported WLM.
- A cloud node (a name the WLM knows before any instance runs it) is
  ``<cluster>-<resource>-<n>``, n from 1 to the resource's max.
- Every worker carries the features ``dcaas`` and ``dcaas_<resource>`` and
  its resource's own; a job asking for features outside that set never
  runs on the resource.
- A drain the engine makes carries the reason prefix ``dcaas:``; a node an
  admin drained (any other reason) is never touched.
"""

from __future__ import annotations

import secrets
from collections.abc import Container

BASE_FEATURE = "dcaas"
DRAIN_REASON_PREFIX = "dcaas:"
_HOSTNAME_MAX = 63
_SUFFIX_LEN = 7  # "-" and 6 hex digits


def resource_feature(resource: str) -> str:
    """The feature every worker of ``resource`` carries (``dcaas_<resource>``)."""
    return f"{BASE_FEATURE}_{resource}"


def worker_features(resource: str, own: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Every feature a worker of ``resource`` carries, in a stable order."""
    return [BASE_FEATURE, resource_feature(resource), *own]


def worker_name(cluster: str, resource: str) -> str:
    """A new dynamic worker's name, unique with overwhelming odds."""
    base = f"{cluster}-{resource}"[: _HOSTNAME_MAX - _SUFFIX_LEN - 1].rstrip("-")
    return f"{base}-{secrets.token_hex(3)}"


def node_prefix(cluster: str) -> str:
    """Every worker name of ``cluster`` starts with this."""
    return f"{cluster}-"


def cloud_node_name(cluster: str, resource: str, number: int) -> str:
    """Cloud node ``number`` (1..max) of ``resource``."""
    return f"{cluster}-{resource}-{number}"


def cloud_node_range(cluster: str, resource: str, count: int) -> str:
    """All ``count`` cloud nodes of ``resource`` as one host list (``c-r-[1-4]``)."""
    return f"{cluster}-{resource}-[1-{count}]" if count > 1 else cloud_node_name(cluster, resource, 1)


def cloud_node_resource(name: str, cluster: str, resources: Container[str]) -> str | None:
    """The resource of cloud node ``<cluster>-<resource>-<n>``, or None if ``name`` is not one."""
    prefix = node_prefix(cluster)
    if not name.startswith(prefix):
        return None
    base, _sep, number = name[len(prefix) :].rpartition("-")
    return base if number.isdigit() and base in resources else None


def drain_reason(reason: str) -> str:
    """``reason`` on one line, with the engine's prefix exactly once."""
    reason = " ".join(str(reason).split())
    if reason.startswith(DRAIN_REASON_PREFIX):
        return reason
    return f"{DRAIN_REASON_PREFIX} {reason}"


def drained_by_engine(reason: str | None) -> bool:
    """Whether a drain reason is one the engine wrote."""
    return bool(reason) and str(reason).startswith(DRAIN_REASON_PREFIX)
