# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Dynamic Cluster daemon: reconcile loop, status API, JSON logs.

Private to the dcaas.cluster collection. The command line around it is
``scripts/dcaasd``, which the ``dynamic_cluster`` role installs on the head node:

    dcaasd run                 reconcile in a loop; SIGTERM ends it after the current pass
    dcaasd once [--check]      one pass (--check: print the plan, change nothing)
    dcaasd status              the running daemon's last pass, from its status API
    dcaasd auto on|off         automatic mode (off: plan and report only)
    dcaasd freeze | thaw       keep the cluster at its size / let it scale again
    dcaasd drain RESOURCE      no launches there; its idle nodes drain and go
    dcaasd restore RESOURCE    put a drained resource back in service
    dcaasd hold NODE           never drain or delete this node
    dcaasd unhold NODE

Logs are one JSON object per line on stdout (journald keeps them).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError
from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config
from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import build_engine
from ansible_collections.dcaas.cluster.plugins.module_utils.policy import next_due
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError


def log(event: str, **fields) -> None:
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


class Status:
    """Last pass, shared between the loop and the status API."""

    def __init__(self, interval: int):
        self.lock = threading.Lock()
        self.interval = interval
        self.data: dict = {"cycles": 0, "last_pass": None, "result": None, "error": None}

    def update(self, **fields) -> None:
        with self.lock:
            self.data.update(fields)

    def snapshot(self) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.data, default=str))

    def healthy(self, now: float) -> bool:
        last = self.snapshot()["last_pass"]
        return last is not None and now - last < 3 * self.interval + 30


def serve_status(status: Status, listen: str) -> ThreadingHTTPServer:
    host, _sep, port = listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/status":
                self._reply(200, status.snapshot())
            elif self.path == "/healthz":
                ok = status.healthy(time.time())
                self._reply(200 if ok else 503, {"healthy": ok})
            else:
                self._reply(404, {"error": "try /status or /healthz"})

        def _reply(self, code: int, body: dict) -> None:
            payload = json.dumps(body, indent=1).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):
            return  # keep the JSON log clean

    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    threading.Thread(target=server.serve_forever, name="status-api", daemon=True).start()
    return server


def wait_for_work(
    stop: threading.Event,
    until: float,
    watch: float,
    probe: Callable[[], frozenset[str] | None],
    seen: frozenset[str] | None,
) -> tuple[str, frozenset[str] | None]:
    """Sleep until ``until`` (epoch seconds), looking at the pending jobs every ``watch`` s.

    Returns why it woke ("stop", "interval" or "new_jobs") and the pending
    ids last read. A job id that was not pending at the previous look (a new
    submission, a requeue) ends the wait early; jobs that leave do not,
    since nothing they cause is urgent. A failing or unsupported probe only
    means waiting for the interval: the next full pass reports the error.
    """
    while True:
        left = until - time.time()
        if left <= 0:
            return "interval", seen
        if watch <= 0 or seen is None:
            return ("stop" if stop.wait(left) else "interval"), seen
        if stop.wait(min(watch, left)):
            return "stop", seen
        now_pending = first_look(probe)
        if now_pending is None:
            return ("stop" if stop.wait(max(0.0, until - time.time())) else "interval"), seen
        if now_pending - seen:
            return "new_jobs", now_pending
        seen = now_pending


def next_pass_at(started: float, interval: float, watch: float, due: float = float("inf")) -> float:
    """When the pass after one that started at ``started`` is due: after
    ``interval``, or earlier when a clock of the plan runs out (``due``,
    policy.next_due), but no sooner than the watch's next look; with the
    watch off, only after the interval."""
    until = started + interval
    if watch > 0:
        until = min(until, max(due, started + watch))
    return until


def first_look(probe: Callable[[], frozenset[str] | None]) -> frozenset[str] | None:
    """The pending ids, or None when they cannot be read.

    Taken just before each pass, so that anything submitted while the pass
    runs counts as new at the next look, and at every look between passes.
    """
    try:
        return probe()
    except (CommandError, OSError):
        return None


def run_loop(cfg: Config, stop: threading.Event, max_passes: int | None = None) -> int:
    engine = build_engine(cfg, log=log)
    status = Status(cfg.timers.interval)
    server = serve_status(status, cfg.status_listen)
    log(
        "started",
        cluster=cfg.cluster,
        interval=cfg.timers.interval,
        watch=cfg.timers.watch,
        status=cfg.status_listen,
        resources=[r.name for r in cfg.resources],
    )
    passes = 0
    try:
        probe = engine.wlm.pending_ids
        while not stop.is_set():
            started = time.time()
            until = next_pass_at(started, cfg.timers.interval, cfg.timers.watch)
            seen = first_look(probe) if cfg.timers.watch > 0 else None
            try:
                result = engine.run_once()
                due = next_due(result.observed, cfg, result.plan, started)
                until = next_pass_at(started, cfg.timers.interval, cfg.timers.watch, due)
                out = result.to_dict()
                status.update(cycles=passes + 1, last_pass=started, result=out, error=None)
                if result.changed or result.errors:
                    log(
                        "pass",
                        launched=len(result.launched),
                        actions=len(result.done),
                        errors=len(result.errors),
                        pending=out["pending_jobs"],
                        nodes=out["node_counts"],
                        seconds=round(time.time() - started, 3),
                    )
            except (CommandError, CloudError, OSError) as exc:
                # The WLM or the cloud is unreachable: nothing was changed;
                # try again next interval rather than exit.
                status.update(cycles=passes + 1, error=str(exc))
                log("pass_failed", error=str(exc))
            passes += 1
            if max_passes is not None and passes >= max_passes:
                break
            why, seen = wait_for_work(stop, until, cfg.timers.watch, probe, seen)
            if why == "new_jobs":
                log("woken", reason="new pending jobs", pending=len(seen or ()))
    finally:
        server.shutdown()
        server.server_close()
        log("stopped", passes=passes)
    return 0
