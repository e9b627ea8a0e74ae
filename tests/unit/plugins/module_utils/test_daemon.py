"""The daemon's wait between passes: woken early by new pending jobs only.

The probe here is a list of answers standing in for the WLM's cheap
pending-id query (the Slurm one runs against real Slurm in
tests/integration/test_engine_scaling.py). Waits are real but short; the
tests assert why the wait ended, never how long it took.
"""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.dcaas.cluster.plugins.module_utils.daemon import first_look, next_pass_at, wait_for_work
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError

WATCH = 0.01
FAR = 60.0  # a wait this long would make the test hang visibly, not pass


def probe_of(*answers):
    """A probe that returns the answers in turn, then repeats the last one."""
    calls = []

    def probe():
        calls.append(1)
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    probe.calls = calls
    return probe


def test_a_new_pending_job_ends_the_wait():
    probe = probe_of(frozenset({"7"}), frozenset({"7"}), frozenset({"7", "8"}))
    why, seen = wait_for_work(threading.Event(), time.time() + FAR, WATCH, probe, frozenset({"7"}))
    assert why == "new_jobs"
    assert seen == frozenset({"7", "8"})
    assert len(probe.calls) == 3


def test_jobs_that_start_or_leave_do_not_end_the_wait():
    probe = probe_of(frozenset({"7"}), frozenset())
    why, seen = wait_for_work(threading.Event(), time.time() + 0.2, WATCH, probe, frozenset({"7", "8"}))
    assert why == "interval"
    assert seen == frozenset()


def test_a_job_that_leaves_and_a_new_one_comes_wakes():
    # Same count, different ids: 8 started, 9 was submitted.
    probe = probe_of(frozenset({"7", "9"}))
    why, _seen = wait_for_work(threading.Event(), time.time() + FAR, WATCH, probe, frozenset({"7", "8"}))
    assert why == "new_jobs"


def test_a_failing_probe_means_waiting_for_the_interval():
    probe = probe_of(CommandError(["squeue"], 1, "", "slurm_load_jobs error: Unable to contact slurm controller"))
    why, seen = wait_for_work(threading.Event(), time.time() + 0.2, WATCH, probe, frozenset({"1"}))
    assert why == "interval"
    assert seen == frozenset({"1"})
    assert len(probe.calls) == 1  # not hammered every watch tick after a failure


def test_no_watch_or_no_cheap_query_waits_for_the_interval():
    probe = probe_of(frozenset({"1", "2"}))
    assert wait_for_work(threading.Event(), time.time() + 0.1, 0, probe, frozenset())[0] == "interval"
    assert wait_for_work(threading.Event(), time.time() + 0.1, WATCH, probe, None)[0] == "interval"
    assert probe.calls == []


def test_stop_ends_the_wait():
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    why, _seen = wait_for_work(stop, time.time() + FAR, WATCH, probe_of(frozenset()), frozenset())
    assert why == "stop"


def test_first_look_turns_errors_into_none():
    assert first_look(probe_of(frozenset({"3"}))) == frozenset({"3"})
    assert first_look(probe_of(OSError("podman exec: no such container"))) is None


@pytest.mark.parametrize(
    ("due", "watch", "expected"),
    [
        (float("inf"), 5, 130.0),  # no clock: the interval
        (112.0, 5, 112.0),  # a clock runs out first
        (101.0, 5, 105.0),  # but no sooner than the watch's next look
        (140.0, 5, 130.0),  # a clock after the interval changes nothing
        (112.0, 0, 130.0),  # without the watch, the interval only
    ],
)
def test_next_pass_at(due, watch, expected):
    assert next_pass_at(100.0, 30, watch, due) == expected
