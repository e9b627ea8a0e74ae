"""Designs measured here before the engine implements them. Not the engine.

``reserve`` (finding 6 of docs/simulation.md): power saving as Slurm does
it (every node of the quota known to the WLM, off until a job is placed on
it, suspended after ``suspend_time`` idle), plus two uses of the start
time the WLM plans for the first queued job (Slurm: ``squeue --start``,
fields StartTime and SchedNodes):

- pre-warm: the powered-down nodes planned for that job are started
  ``lead`` seconds before its planned start, so a job whose blockers run
  to their time limits does not also wait for its nodes to boot;
- early suspend: an idle node planned for that job, with no core to spare
  at its start, is powered down at once when the start is further away
  than ``suspend_time + lead``: power saving would suspend it before the
  start anyway, after idling ``suspend_time`` seconds.

The engine does not do this yet: it needs the WLM to know nodes that are
off (Slurm State=CLOUD), see finding 5. Measuring the design first is the
point of this module.
"""

from __future__ import annotations

import math

from tools.sim.core import Simulation
from tools.sim.policies import PowerSave
from tools.sim.scheduler import OFF, UP, SimNode


class ReservationAware(PowerSave):
    name = "reserve"

    def __init__(self, suspend_time: float = 600.0, lead: float | None = None):
        super().__init__(suspend_time)
        self.lead = lead  # None: the cloud's mean boot time
        self.prewarmed = 0
        self.suspended_early = 0
        self._planned: tuple | None = None  # the plan pre-warm last acted on

    def attach(self, sim: Simulation) -> None:
        super().attach(sim)
        self.sim = sim
        if self.lead is None:
            self.lead = sim.cloud.boot_delay

    def _plan(self, now: float) -> tuple[int, float, dict[str, int]] | None:
        """(first queued job, its planned start, spare cores of its planned
        nodes at that start), or None if nothing is planned."""
        queue = self.sim.sched.queue
        if not queue:
            return None
        start, spare = self.sim.sched.reservation(queue[0], now)
        return None if start == math.inf else (queue[0].id, start, spare)

    def after_schedule(self, sim: Simulation) -> None:
        plan = self._plan(sim.now)
        if plan is None:
            return
        job_id, start, spare = plan
        key = (job_id, start, tuple(spare))
        if key == self._planned:
            return
        self._planned = key
        names = list(spare)

        def prewarm(now: float) -> None:
            if self._planned != key:
                return  # the plan changed: a later call acts on the new one
            for name in names:
                node = sim.sched.pool.get(name)
                if node is not None and node.state == OFF:
                    sim.power_up(node)
                    self.prewarmed += 1

        sim.call_at(start - self.lead, prewarm)

    def on_idle(self, sim: Simulation, node: SimNode) -> None:
        super().on_idle(sim, node)
        since = node.idle_since

        def check(now: float) -> None:
            if node.state != UP or node.jobs or node.idle_since != since:
                return
            plan = self._plan(now)
            if plan is None:
                return
            _job_id, start, spare = plan
            if spare.get(node.name) == 0 and start - now > self.suspend_time + self.lead:
                sim.power_down(node)
                self.suspended_early += 1

        # After this instant's scheduling pass, which may give it a job.
        sim.call_at(sim.now, check)

    def stats(self) -> dict:
        return {"prewarmed": self.prewarmed, "suspended_early": self.suspended_early}


PROTOTYPES = {"reserve": ReservationAware}
