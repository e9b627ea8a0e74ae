"""The daemon's loop survives any failed pass, backs off, and keeps serving status.

The engine here fails on the passes a script says, with the exceptions a
bad WLM answer, a bug or a broken node name raise; the passes between are
real passes of test_engine's in-memory world. Time is virtual where the
test is about how long the daemon waits: its waits advance a clock
instead of sleeping, so a back-off of minutes takes no time.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from test_engine import CONFIG, NOW, FakeCloud, FakeWlm

from ansible_collections.dcaas.cluster.plugins.module_utils import daemon
from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import Engine
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Job
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import Capability

OK = None  # a pass that works


class ScriptedEngine:
    """A real engine whose passes raise the exceptions in ``script`` instead, in turn."""

    def __init__(self, cfg, script, wlm=None):
        self.wlm = wlm or FakeWlm()
        self.real = Engine(cfg, self.wlm, FakeCloud(), StateStore(cfg.state_file), clock=lambda: NOW)
        self.script = list(script)
        self.passes = 0
        self.before_pass = lambda: None

    def run_once(self):
        self.before_pass()
        self.passes += 1
        outcome = self.script.pop(0) if self.script else OK
        if outcome is OK:
            return self.real.run_once()
        if isinstance(outcome, BaseException):
            # pylint cannot tell that the script holds exceptions here.
            raise outcome  # pylint: disable=raising-bad-type
        return outcome(self.real.run_once())


class Unserialisable:
    """A result whose to_dict fails, as a result holding something odd would."""

    def __init__(self, result):
        self.observed, self.plan = result.observed, result.plan
        self.changed, self.errors = False, []

    def to_dict(self):
        raise TypeError("Object of type Node is not JSON serializable")


class NoObservation:
    """A result next_due cannot read."""

    observed = plan = None

    def __init__(self, _result):
        pass


class ProbeFails(FakeWlm):
    def pending_ids(self):
        raise ValueError("squeue answered something that is not a job id list")


class VirtualTime:
    """The daemon's clock and stop event: a wait moves the clock on at once."""

    def __init__(self):
        self.now = 1_000_000.0
        self.waits: list[float] = []
        self.stop = threading.Event()
        real_wait = self.stop.wait

        def wait(timeout=None):
            self.waits.append(timeout)
            self.now += timeout
            return real_wait(0)

        self.stop.wait = wait

    def time(self):
        return self.now


def config(tmp_path, **timers):
    """A valid config, then what the loader would refuse but the daemon must
    survive anyway: port 0 (any free port, for the test) and timers beyond
    the loader's bounds (the daemon bounds its waits again)."""
    cfg = parse(
        {
            **CONFIG,
            "state_file": str(tmp_path / "state.json"),
            "status_token_file": str(tmp_path / "token" / "status.token"),
        }
    )
    return replace(cfg, status_listen="127.0.0.1:0", timers=replace(cfg.timers, **timers))


@pytest.fixture
def daemon_with(monkeypatch):
    """Run the daemon's loop on an engine; gives the status server it started."""
    servers = []
    serve = daemon.serve_status

    def spy(*args, **kwargs):
        servers.append(serve(*args, **kwargs))
        return servers[-1]

    monkeypatch.setattr(daemon, "serve_status", spy)

    def run(cfg, engine, stop=None, max_passes=None):
        monkeypatch.setattr(daemon, "build_engine", lambda _cfg, log=None: engine)
        return daemon.run_loop(cfg, stop or threading.Event(), max_passes=max_passes)

    run.servers = servers
    return run


def get_status(server, cfg):
    token = Path(cfg.status_token_file).read_text().strip()
    host, port = server.server_address[:2]
    request = urllib.request.Request(f"http://{host}:{port}/status", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def log_records(capsys, event=None):
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines()]  # every line is one JSON object
    return [r for r in records if event is None or r["event"] == event]


# What fails the pass, and the exception the status then names.
FAILURES = [
    (ValueError("invalid node name 'T-A-1!'"), "ValueError"),
    (TypeError("'>' not supported between instances of 'str' and 'int'"), "TypeError"),
    (RecursionError("maximum recursion depth exceeded"), "RecursionError"),
    (KeyError("nodes"), "KeyError"),
    (CommandError(["sinfo", "--json"], 1, "", "Unable to contact slurm controller"), "CommandError"),
    (Unserialisable, "TypeError"),
    (NoObservation, "AttributeError"),
]


def test_no_failed_pass_ends_the_loop_and_the_status_api_keeps_serving(tmp_path, daemon_with, monkeypatch, capsys):
    cfg = config(tmp_path, interval=1, watch=1)
    engine = ScriptedEngine(cfg, [*(f for f, _name in FAILURES), OK, ValueError("again")], wlm=ProbeFails())
    statuses = []
    engine.before_pass = lambda: statuses.append(get_status(daemon_with.servers[0], cfg))
    time = VirtualTime()
    monkeypatch.setattr(daemon, "time", time)
    assert daemon_with(cfg, engine, stop=time.stop, max_passes=len(FAILURES) + 3) == 0
    assert engine.passes == len(FAILURES) + 3
    # What each pass saw of the one before: the error and the failures in a row.
    for i, (_failure, name) in enumerate(FAILURES, start=1):
        assert statuses[i]["error"].startswith(name + ":"), statuses[i]
        assert statuses[i]["consecutive_failures"] == i
    after_good = statuses[len(FAILURES) + 1]
    assert after_good["error"] is None and after_good["consecutive_failures"] == 0
    assert after_good["result"]["pending_jobs"] == 0
    assert statuses[-1]["error"] == "ValueError: again" and statuses[-1]["consecutive_failures"] == 1
    assert [r["consecutive_failures"] for r in log_records(capsys, "pass_failed")] == [1, 2, 3, 4, 5, 6, 7, 1]


def test_failures_in_a_row_back_off_doubling_up_to_the_interval_and_a_good_pass_resets(
    tmp_path, daemon_with, monkeypatch, capsys
):
    cfg = config(tmp_path, interval=20, watch=2)
    boom = ValueError("boom")
    engine = ScriptedEngine(cfg, [boom, boom, boom, boom, boom, OK, boom, OK])
    time = VirtualTime()
    monkeypatch.setattr(daemon, "time", time)
    daemon_with(cfg, engine, stop=time.stop, max_passes=8)
    # 2, 4, 8, 16, then the interval; a good pass waits the interval (no
    # clock runs in this world); the next failure starts again from 2.
    assert time.waits == [2, 4, 8, 16, 20, 20, 2]
    assert [r["retry_in"] for r in log_records(capsys, "pass_failed")] == [2, 4, 8, 16, 20, 2]


def test_with_the_watch_off_the_back_off_starts_at_a_few_seconds(tmp_path, daemon_with, monkeypatch):
    cfg = config(tmp_path, interval=3600, watch=0)
    engine = ScriptedEngine(cfg, [KeyError("x")] * 3)
    time = VirtualTime()
    monkeypatch.setattr(daemon, "time", time)
    daemon_with(cfg, engine, stop=time.stop, max_passes=3)
    assert time.waits == [5, 10]


def test_a_failed_pass_is_one_short_json_line_without_traceback(tmp_path, daemon_with, capsys):
    cfg = config(tmp_path, interval=1, watch=0)
    huge = "x" * 100_000
    engine = ScriptedEngine(cfg, [ValueError(f"cannot read node {huge}")])
    daemon_with(cfg, engine, max_passes=1)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and huge not in out
    [failed] = [json.loads(line) for line in out.splitlines() if '"pass_failed"' in line]
    assert failed["error"].startswith("ValueError: cannot read node xxx")
    assert len(failed["error"]) < 400 and "more characters" in failed["error"]


def test_keyboard_interrupt_still_stops_the_loop(tmp_path, daemon_with, capsys):
    cfg = config(tmp_path, interval=1, watch=0)
    with pytest.raises(KeyboardInterrupt):
        daemon_with(cfg, ScriptedEngine(cfg, [KeyboardInterrupt()]), max_passes=3)
    assert log_records(capsys)[-1]["event"] == "stopped"


@pytest.mark.parametrize(("interval", "watch"), [(10**12, 5), (10**400, 0), (30, 10**400)])
def test_a_huge_interval_or_watch_does_not_crash_the_loop(tmp_path, daemon_with, interval, watch):
    cfg = config(tmp_path, interval=interval, watch=watch)
    engine = ScriptedEngine(cfg, [])
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    try:
        assert daemon_with(cfg, engine, stop=stop, max_passes=5) == 0
    finally:
        timer.cancel()
    assert engine.passes == 1  # then it waited, until stopped


@pytest.mark.parametrize(("until", "waits"), [(float("inf"), 1), (float("nan"), 0), (-5.0, 0)])
def test_a_wait_never_exceeds_a_day(monkeypatch, until, waits):
    time = VirtualTime()
    monkeypatch.setattr(daemon, "time", time)
    why, _seen = daemon.wait_for_work(time.stop, until, 0, lambda: None, None)
    assert why == "interval"
    assert time.waits == [86400] * waits


def test_a_failed_pass_never_shows_a_credential_of_the_config(tmp_path, daemon_with, capsys):
    secret = "dcaasmarker0a1b2c3d"
    cfg = config(tmp_path, interval=1, watch=0)
    cfg = replace(cfg, provider_options={"auth": {"username": "u", "password": secret}})
    engine = ScriptedEngine(cfg, [CommandError(["openstack"], 1, "", f"https://u:{secret}@keystone refused")])
    daemon_with(cfg, engine, max_passes=1)
    out, err = capsys.readouterr()
    [failed] = [json.loads(line) for line in out.splitlines() if '"pass_failed"' in line]
    assert failed["error"].startswith("CommandError: command 'openstack' failed") and failed["kind"] == "command"
    assert "u:********@keystone" in failed["error"] and secret not in out + err


class Watched(FakeWlm):
    capabilities = frozenset({Capability.PENDING_WATCH})

    def __init__(self):
        super().__init__()
        self.probes = 0

    def pending_ids(self):
        self.probes += 1
        return frozenset()


class Unwatched(Watched):
    capabilities = frozenset()


@pytest.mark.parametrize(("wlm_class", "probes"), [(Watched, 1), (Unwatched, 0)])
def test_the_pending_watch_asks_only_an_adapter_that_declares_it(tmp_path, daemon_with, wlm_class, probes):
    cfg = config(tmp_path, watch=5)
    wlm = wlm_class()
    daemon_with(cfg, ScriptedEngine(cfg, [], wlm=wlm), max_passes=1)
    assert wlm.probes == probes  # the look just before the pass


def test_an_unreadable_state_file_is_logged_once_per_problem_and_every_pass_refuses(
    tmp_path, daemon_with, monkeypatch, capsys
):
    cfg = config(tmp_path, interval=1, watch=0)
    state = Path(cfg.state_file)
    # What the file holds at each pass: one problem three times, another, then a good file.
    contents = ["{", "{", "{", "[]", json.dumps({"version": 1, "controls": {"auto": True}})]
    engine = ScriptedEngine(cfg, [])
    engine.real.log = daemon.log
    engine.wlm.job_list = [Job("1", "pending")]
    statuses = []

    def before_pass():
        if engine.passes:
            statuses.append(get_status(daemon_with.servers[0], cfg))
        state.write_text(contents[engine.passes])

    engine.before_pass = before_pass
    time = VirtualTime()
    monkeypatch.setattr(daemon, "time", time)
    daemon_with(cfg, engine, stop=time.stop, max_passes=len(contents))
    logged = [(r["event"], r["message"]) for r in log_records(capsys) if r["event"].startswith("state_warning")]
    assert [event for event, _message in logged] == [
        "state_warning",  # "{" at pass 1, not again at passes 2 and 3
        "state_warning",  # "[]" at pass 4
        "state_warning_cleared",  # ... and "{" is gone
        "state_warning_cleared",  # pass 5: "[]" is gone too
    ]
    assert "Expecting property name" in logged[0][1] and "a JSON list" in logged[1][1]
    assert logged[2][1] == logged[0][1] and logged[3][1] == logged[1][1]
    # Every unreadable pass still refuses to act and says so.
    assert all(any("auto off and frozen" in w for w in s["result"]["warnings"]) for s in statuses)
    assert len(statuses) == 4 and len(engine.real.cloud.created) == 1  # only pass 5 launched
