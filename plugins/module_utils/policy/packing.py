# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which resources a job may use, and first-fit packing of the queue onto nodes.

Private to the dcaas.cluster collection.
"""

from __future__ import annotations

from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Job, Resource, Unfit
from ansible_collections.dcaas.cluster.plugins.module_utils.policy.pools import Pool, order_key


def _fits_flavor(job: Job, res: Resource) -> bool:
    return job.cores <= res.cores and job.memory_mb <= res.memory_mb


def _allowed(job: Job, res: Resource) -> bool:
    if res.accounts and job.account not in res.accounts:
        return False
    if res.partitions and job.partitions and not set(job.partitions) & set(res.partitions):
        return False
    return not job.features or job.features <= {*naming.worker_features(res.name, res.features)}


def candidates(job: Job, resources: list[Resource]) -> list[Resource]:
    """Resources a job may run on, in the order they are tried.

    The tenant's own pools (those that list the job's account) come first,
    then the shared pools; within each group by priority, then name.
    """
    own = sorted((r for r in resources if r.accounts and _allowed(job, r)), key=order_key)
    shared = sorted((r for r in resources if not r.accounts and _allowed(job, r)), key=order_key)
    return own + shared


def able(job: Job, resources: list[Resource]) -> list[Resource]:
    """The candidates that can take the whole job: its nodes fit their
    flavor, and as many as it needs fit within their max."""
    return [r for r in candidates(job, resources) if _fits_flavor(job, r) and job.nodes <= r.max]


def why_unfit(job: Job, resources: list[Resource]) -> str:
    allowed = [r for r in resources if _allowed(job, r)]
    if not allowed:
        return (
            f"no resource accepts account={job.account!r} partitions={list(job.partitions)} "
            f"features={sorted(job.features)}"
        )
    fitting = [r for r in allowed if _fits_flavor(job, r)]
    if not fitting:
        big = max(allowed, key=lambda r: (r.cores, r.memory_mb))
        return (
            f"needs {job.cores} cores and {job.memory_mb} MB per node; the largest allowed "
            f"resource {big.name!r} (flavor {big.flavor}) has {big.cores} cores and {big.memory_mb} MB"
        )
    most = max(fitting, key=lambda r: r.max)
    return f"needs {job.nodes} nodes at once; the largest allowed resource {most.name!r} has max={most.max}"


def shape(job: Job) -> tuple:
    """What decides where a job may go: jobs of one shape go to the same places."""
    return (job.cores, job.memory_mb, job.nodes, job.account, job.partitions, job.features)


def pack(
    jobs: tuple[Job, ...],
    resources: list[Resource],
    pools: dict[str, Pool],
    bins: list[list],
    budget_left: int,
) -> tuple[list[Unfit], set[str]]:
    """First-fit every eligible pending job onto ``bins``, launching where none fit.

    ``bins`` are ``[free cores, free memory, node name or None, resource]`` in
    creation order, oldest first; nodes launched here are appended. Scanning
    one list in creation order, whatever the resource, is what makes the plan
    reproducible once its launches exist as booting nodes. Returns the unfit
    jobs and the names of existing nodes that received work.

    The first job that cannot be placed in full (its missing nodes do not
    fit within max, headroom, back-off or the launch budget) keeps the nodes
    it found and launches towards its width as far as room and budget allow.
    Otherwise later, smaller jobs would take that room and the nodes it
    found, and a job wider than the free room would wait for as long as
    smaller ones keep coming: the WLM reserves nodes only among those that
    exist (dynamic nodes). Once enough nodes exist, the WLM's own
    reservation protects it. The price: what it keeps idles until it starts.
    """
    unfit: list[Unfit] = []
    used: set[str] = set()
    launched = 0
    first_launch_free = budget_left >= 0 and all(p.planned == 0 for p in pools.values())
    cands_cache: dict[tuple, tuple[frozenset[str], list[Pool]] | str] = {}
    # Bins only shrink, so a shape's first fitting bin only moves right: each
    # shape's scan resumes where it last found room. Shapes that found no
    # place at all are done for this round (room and budget only shrink).
    resume_at: dict[tuple, int] = {}
    dead: set[tuple] = set()
    blocked = False  # the first job that could not be placed in full was seen
    for job in jobs:
        if not job.pending or not job.eligible:
            continue
        key = shape(job)
        cands = cands_cache.get(key)
        if cands is None:
            allowed = [pools[r.name] for r in able(job, resources)]
            names = frozenset(p.resource.name for p in allowed)
            cands = (names, allowed) if allowed else why_unfit(job, resources)
            cands_cache[key] = cands
        if isinstance(cands, str):
            unfit.append(Unfit(job.id, cands))
            continue
        if key in dead:
            continue
        names, allowed = cands
        found: list[list] = []
        first = None
        for idx in range(resume_at.get(key, 0), len(bins)):
            b = bins[idx]
            if b[0] >= job.cores and b[1] >= job.memory_mb and b[3] in names:
                if first is None:
                    first = idx
                found.append(b)  # one node of the job per bin
                if len(found) == job.nodes:
                    break
        resume_at[key] = first if first is not None else len(bins)
        left = job.nodes - len(found)
        target = None
        grow = 0
        if left:
            # New nodes for one job come from one resource, all in one step.
            # Only the first launch of a cycle may exceed the budget, else a
            # job wider than the budget would never start.
            budget = left if first_launch_free and launched == 0 else max(0, budget_left - launched)
            target = next((p for p in allowed if left <= p.room()), None) if left <= budget else None
            if target is None:
                dead.add(key)
                if blocked:
                    continue
                blocked = True
                # It keeps what it found and grows where room is largest.
                target = max(allowed, key=lambda p: p.room())
                grow = min(target.room(), budget)
            else:
                grow = left
        for b in found:
            b[0] -= job.cores
            b[1] -= job.memory_mb
            if b[2] is not None:
                used.add(b[2])
        if grow:
            res = target.resource
            bins.extend([res.cores - job.cores, res.memory_mb - job.memory_mb, None, res.name] for _node in range(grow))
            target.launch += grow
            target.jobs.append(job.id)
            launched += grow
    return unfit, used
