# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-resource planning state and the retirement rule both policies share.

Private to the dcaas.cluster collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config, TimerConfig
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Backoff,
    Controls,
    Node,
    Observed,
    Resource,
    Timers,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.timers import kept_backoffs


@dataclass
class Pool:
    """Planning state of one resource during a decide() call."""

    resource: Resource
    count: int = 0  # managed nodes that exist and stay
    headroom: int | None = None  # new nodes the cloud can still take
    usable: bool = True  # launches allowed (not drained, frozen, backing off)
    planned: int = 0  # launches fixed by earlier rounds
    launch: int = 0  # launches added in the current round
    floor: int = 0  # of the planned launches, those made for min
    out_of_service: int = 0  # drained by an admin: counted against max, not min
    jobs: list[str] = field(default_factory=list)

    def room(self) -> int:
        if not self.usable:
            return 0
        new = self.planned + self.launch
        room = self.resource.max - self.count - new
        if self.headroom is not None:
            room = min(room, self.headroom - new)
        return max(0, room)


def order_key(res: Resource) -> tuple[int, str]:
    return (res.priority, res.name)


def make_pools(
    observed: Observed, config: Config, now: float, timers: Timers, controls: Controls, notes: list[str]
) -> tuple[dict[str, Backoff], dict[str, Pool]]:
    """The back-offs to keep and a planning pool per resource; notes say
    what stops launches (frozen, back-off)."""
    backoff = kept_backoffs(observed, config, now, timers) if timers.backoff else {}
    pools: dict[str, Pool] = {}
    for res in config.resources:
        hr = observed.headroom.get(res.name)
        b = backoff.get(res.name)
        pools[res.name] = Pool(
            resource=res,
            headroom=hr.nodes_for(res.cores, res.memory_mb) if hr is not None else None,
            usable=not controls.frozen and res.name not in controls.drained_resources and (b is None or b.until <= now),
        )
    if controls.frozen:
        notes.append("frozen: no launch, drain or delete")
    for name, b in sorted(backoff.items()):
        if b.until > now:
            why = f"{b.failures} failure(s): {b.last_error}"
            notes.append(f"resource {name!r} backs off until {b.until:.0f} after {why}")
    return backoff, pools


def idle_retirement(
    node: Node, res: Resource | None, controls: Controls, idle_for: float, remaining: dict[str, int], t: TimerConfig
) -> str | None:
    """Why an idle node goes (drained, or powered down), or None to keep it:
    its resource is gone or drained by the admin, or it idled past the
    timeout while its resource stays above min."""
    if res is None:
        return "resource no longer configured"
    if node.resource in controls.drained_resources:
        return "resource drained by admin"
    if idle_for >= t.idle_timeout and remaining[node.resource] > res.min:
        return f"idle for {idle_for:.0f}s"
    return None
