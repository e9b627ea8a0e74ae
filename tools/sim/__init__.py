"""Trace-driven simulator that evaluates the scaling policy on real workloads.

Jobs from Parallel Workloads Archive traces (SWF) are replayed through a
simulated batch scheduler (FCFS with EASY backfilling) and a simulated cloud,
and the cluster is grown and shrunk by a controller: the engine's real
``policy.decide`` or one of the baselines it is compared with. Everything is
seeded and deterministic. See docs/simulation.md.
"""
