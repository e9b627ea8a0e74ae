"""Property-based tests of the policy's invariants (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import S, apply, cfg, job, node, observed, res

from ansible_collections.dcaas.cluster.plugins.module_utils.config import LimitConfig
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Timers
from ansible_collections.dcaas.cluster.plugins.module_utils.policy import decide

T0 = 100_000.0

configs = st.builds(
    lambda a_max, b_max, a_min, budget: cfg(
        res("a", cores=4, memory_mb=8000, max=a_max, min=min(a_min, a_max), priority=1),
        res("b", cores=8, memory_mb=16000, max=b_max, priority=2, accounts=["chem"]),
        limits={"max_launches_per_cycle": budget},
        idle_timeout=300,
    ),
    st.integers(0, 8),
    st.integers(0, 6),
    st.integers(0, 3),
    st.integers(1, 20),
)

job_lists = st.lists(
    st.builds(
        lambda i, cores, mem, n, acct, state: job(
            f"j{i}", cores=cores, memory_mb=mem, nodes=n, account=acct, state=state
        ),
        st.integers(0, 10**6),
        st.integers(1, 9),
        st.sampled_from([0, 1000, 7000, 15000]),
        st.integers(1, 4),
        st.sampled_from([None, "chem", "phys"]),
        st.sampled_from(["pending", "pending", "running"]),
    ),
    max_size=40,
    unique_by=lambda j: j.id,
)

node_states = st.sampled_from([S.STARTING, S.IDLE, S.BUSY, S.DRAINING, S.DOWN])


@st.composite
def worlds(draw):
    """Valid worlds, and worlds a partial or malformed WLM answer makes:
    a job on a node in any state (a booting node the WLM lists late, an idle
    one whose node list lags), and running jobs that name nodes whose Node
    does not carry the job (the node record was missing or cut short)."""
    config = draw(configs)
    nodes = []
    for r in config.resources:
        for i in range(draw(st.integers(0, r.max))):
            state = draw(node_states)
            busy = state is S.BUSY or draw(st.booleans())
            nodes.append(
                node(
                    f"{r.name}{i}",
                    r.name,
                    state,
                    created=T0 - draw(st.integers(0, 2000)),
                    cores=r.cores,
                    memory_mb=r.memory_mb,
                    jobs=("r1",) if busy and draw(st.booleans()) else (),
                    cores_alloc=1 if busy and draw(st.booleans()) else 0,
                    drained_by_us=draw(st.booleans()),
                    in_wlm=state is not S.STARTING and draw(st.booleans()),
                )
            )
    jobs = draw(job_lists)
    names = [n.name for n in nodes]
    if names:
        hidden = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
        jobs = [*jobs, *(job(f"hidden-{name}", state="running", node_names=(name,)) for name in hidden)]
    timers = Timers(
        idle_since={n.name: T0 - draw(st.integers(0, 1000)) for n in nodes},
        down_since={n.name: T0 - draw(st.integers(0, 1000)) for n in nodes},
    )
    return config, observed(jobs, nodes), timers


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_never_above_max(world):
    config, obs, timers = world
    plan = decide(obs, config, T0, timers)
    for r in config.resources:
        existing = sum(1 for n in obs.nodes if n.resource == r.name)
        deleted = sum(1 for a in plan.actions if a.action == "delete" and a.resource == r.name)
        new = sum(x.count for x in plan.launches if x.resource == r.name)
        assert existing - deleted + new <= max(r.max, existing - deleted)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_never_drains_or_deletes_a_node_running_a_job(world):
    config, obs, timers = world
    plan = decide(obs, config, T0, timers)
    running = {n.name for n in obs.nodes if n.running_jobs}
    running.update(name for j in obs.jobs if not j.pending for name in j.node_names)
    assert not [a for a in plan.actions if a.action in ("drain", "delete", "forget") and a.node in running]


@settings(max_examples=200, deadline=None)
@given(worlds(), st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3))
def test_protected_mode_takes_nothing_away(world, why):
    config, obs, timers = world
    plan = decide(replace(obs, contradictions=tuple(why)), config, T0, timers)
    assert not [a for a in plan.actions if a.action in ("drain", "delete", "forget", "power_down")]


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_never_launches_twice_for_the_same_demand(world):
    # Carry out a plan; the same queue looked at again (nodes still booting)
    # must not launch again. (A launch budget legitimately defers demand to
    # the next cycle, so it is lifted here. The second look is at the same
    # instant: one second later a booting node can pass boot_timeout and be
    # replaced, a new launch for a new reason; hypothesis found that case.)
    config, obs, timers = world
    config = replace(config, limits=LimitConfig(max_launches_per_cycle=10_000))
    plan = decide(obs, config, T0, timers)
    after = apply(obs, plan, config, T0, [0])
    again = decide(after, config, T0, plan.timers)
    assert sum(x.count for x in again.launches) == 0


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_converges_to_min_when_the_queue_is_empty(world):
    config, obs, timers = world
    # All jobs finish; booting nodes come up idle; nothing runs any more.
    idle = tuple(
        replace(n, state=S.IDLE if n.state is not S.DRAINING else S.DRAINING, jobs=(), cores_alloc=0, in_wlm=True)
        for n in obs.nodes
    )
    world_now = observed(nodes=idle)
    now, seq = T0, [0]
    for _cycle in range(12):
        plan = decide(world_now, config, now, timers)
        world_now = apply(world_now, plan, config, now, seq)
        # booted nodes register idle next cycle
        world_now = replace(
            world_now,
            nodes=tuple(replace(n, state=S.IDLE, in_wlm=True) if n.state is S.STARTING else n for n in world_now.nodes),
        )
        timers = plan.timers
        now += 400
    for r in config.resources:
        # Nodes an admin drained are the admin's to release.
        mine = [n for n in world_now.nodes if n.resource == r.name]
        admins = sum(1 for n in mine if n.state is S.DRAINING and not n.drained_by_us)
        assert len(mine) - admins == min(r.min, r.max - admins), (r.name, len(mine), admins, r.min)
