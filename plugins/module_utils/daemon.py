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

Logs are one JSON object per line on stdout (journald keeps them). The status
API answers GET /status only to requests bearing the token the daemon keeps in
``status_token_file`` (``status_auth: token``, the default); GET /healthz, which
says only whether passes succeed, is open to systemd and monitoring.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import json
import os
import secrets
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config, is_loopback, listen_address
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import Engine
from ansible_collections.dcaas.cluster.plugins.module_utils.errors import clip, describe
from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import build_engine, explain
from ansible_collections.dcaas.cluster.plugins.module_utils.policy import next_due, next_pass_at
from ansible_collections.dcaas.cluster.plugins.module_utils.redact import config_secrets
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import Capability

# No single wait is longer than a day: Event.wait overflows past about 2**33
# seconds, and a config value can be any integer. An interval or watch above
# a day therefore acts as a day.
LONGEST_WAIT = 86400
# The first retry after a failed pass when the watch is off.
FIRST_RETRY = 5
# The status token: what the daemon makes, and what it accepts in the file.
TOKEN_BYTES = 32
TOKEN_MIN, TOKEN_MAX = 32, 1024
_AS_ROOT = "run as root (the daemon's user), or set status_token_file to a path it may use"

_log_lock = threading.Lock()


def log(event: str, **fields) -> None:
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    line = json.dumps(record, default=str) + "\n"
    with _log_lock:  # the status API's threads log too
        sys.stdout.write(line)
        sys.stdout.flush()


def bounded(seconds: float) -> float:
    """``seconds`` as a wait Event.wait accepts: 0 to LONGEST_WAIT (NaN is 0)."""
    if not seconds > 0:
        return 0.0
    return float(min(seconds, LONGEST_WAIT))


def retry_after(failures: int, interval: float, watch: float) -> float:
    """Seconds from the ``failures``-th failed pass in a row to the next try:
    the watch period (FIRST_RETRY with the watch off), doubled for each
    failure in a row, at most the interval."""
    first = watch if watch > 0 else FIRST_RETRY
    return min(interval, first * 2 ** min(failures - 1, 32))


class Status:
    """Last pass, shared between the loop and the status API."""

    def __init__(self, interval: float):
        self.lock = threading.Lock()
        self.interval = interval
        self.data: dict = {"cycles": 0, "last_pass": None, "result": None, "error": None, "consecutive_failures": 0}

    def update(self, **fields) -> None:
        # Serialised here, in the loop, so that a value that does not
        # serialise fails the pass, not every status request after it.
        fields = json.loads(json.dumps(fields, default=str))
        with self.lock:
            self.data.update(fields)

    def snapshot(self) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.data))

    def healthy(self, now: float) -> bool:
        last = self.snapshot()["last_pass"]
        return last is not None and now - last < 3 * self.interval + 30


class DaemonError(Exception):
    """The daemon or its status API cannot work as configured; the message says why and what to do."""


def status_token(path: str) -> str:
    """The status API's bearer token: made at the first start, read back after.

    Made with O_EXCL and mode 0600 (its directory 0700 if missing), so it is
    never readable by anyone else, not even for a moment; read back only if
    it is still so (read_status_token).
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        with contextlib.suppress(FileExistsError):
            os.makedirs(directory, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return read_status_token(path)
    except OSError as exc:
        raise DaemonError(f"status_token_file {clip(path)}: cannot create it ({exc.strerror}); {_AS_ROOT}") from None
    token = secrets.token_hex(TOKEN_BYTES)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        os.unlink(path)  # an empty token file would stop every later start
        raise DaemonError(f"status_token_file {clip(path)}: cannot write it ({exc.strerror})") from None
    return token


def read_status_token(path: str) -> str:
    """The token in ``path``, if only its owner, this user, can read it.

    The daemon refuses to start on a file others could read (they would read
    the status), and ``dcaasd status`` reads the token through here too.
    """
    where = f"status_token_file {clip(path)}"
    try:
        # O_NONBLOCK: a FIFO put there must not hang the daemon at open.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DaemonError(
            f"{where} does not exist: the daemon makes it when it starts; "
            "is it running (systemctl status dcaas-engine)?"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DaemonError(f"{where} is a symbolic link; point status_token_file at the file itself") from None
        raise DaemonError(f"{where}: cannot read it ({exc.strerror}); {_AS_ROOT}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DaemonError(f"{where} is not a regular file; remove it and the daemon makes a new token")
        if info.st_uid != os.geteuid():
            raise DaemonError(
                f"{where} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()}); "
                "remove it and the daemon makes a new token, or run as its owner"
            )
        if info.st_mode & 0o077:
            raise DaemonError(
                f"{where} has mode {stat.S_IMODE(info.st_mode):04o}: group or others can read or change it; "
                "chmod 600 it, or remove it and the daemon makes a new token"
            )
        text = os.read(fd, TOKEN_MAX + 2).decode("ascii", errors="replace").strip()
    finally:
        os.close(fd)
    if not TOKEN_MIN <= len(text) <= TOKEN_MAX or not all("!" <= c <= "~" for c in text):
        raise DaemonError(
            f"{where} holds no token ({TOKEN_MIN} to {TOKEN_MAX} visible ASCII characters); "
            "remove it and the daemon makes a new one"
        )
    return text


def parse_listen(listen: str) -> tuple[str, int]:
    """(host, port) of status_listen, read by the config loader's own parser; DaemonError says what is wrong."""
    try:
        return listen_address(listen)
    except ValueError as exc:
        raise DaemonError(f"status_listen {clip(listen)!r}: {exc}") from None


def bearer_matches(header: str | None, token: str) -> bool:
    scheme, _sep, given = (header or "").strip().partition(" ")
    # Bytes: compare_digest refuses non-ASCII str, and a header is anything a client sends.
    offered = given.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(offered, token.encode("ascii"))


def serve_status(status: Status, listen: str, token: str | None) -> ThreadingHTTPServer:
    """Serve GET /status (with ``token``: only to requests bearing it) and
    GET /healthz (always open: it tells only whether passes succeed, for
    systemd and monitoring) on ``listen``, in a thread.

    Without a token, only on a loopback address: any local user may then
    read the status, nobody else.
    """
    host, port = parse_listen(listen)
    if token is None and not is_loopback(host):
        raise DaemonError(
            f"status_listen {clip(listen)!r}: with status_auth: none the status API listens on a loopback "
            f"address only (127.0.0.1, [::1], localhost); set status_auth: token to listen on {clip(host)}"
        )

    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a client that sends nothing does not hold a thread for ever

        def do_GET(self):
            try:
                self._route()
            except Exception as exc:
                log("status_api_error", error=describe(exc))
                self._reply(500, {"error": "internal error; see the daemon's log"})

        def _route(self) -> None:
            if self.path == "/healthz":
                ok = status.healthy(time.time())
                self._reply(200 if ok else 503, {"healthy": ok})
            elif self.path != "/status":
                self._reply(404, {"error": "try /status or /healthz"})
            elif token is not None and not bearer_matches(self.headers.get("Authorization"), token):
                self._reply(
                    401,
                    {"error": "send Authorization: Bearer <the token in the daemon's status_token_file>"},
                    {"WWW-Authenticate": 'Bearer realm="dcaas"'},
                )
            else:
                self._reply(200, status.snapshot())

        def _reply(self, code: int, body: dict, headers: dict | None = None) -> None:
            payload = json.dumps(body, indent=1).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):
            return  # keep the JSON log clean

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        server = Server((host, port), Handler)
    except OSError as exc:
        raise DaemonError(
            f"status_listen {clip(listen)!r}: cannot listen there ({exc.strerror or exc}); "
            "choose a free port on an address of this host"
        ) from None
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
    A wait never exceeds LONGEST_WAIT, whatever ``until`` says.
    """
    while True:
        left = until - time.time()
        if not left > 0:
            return "interval", seen
        if watch <= 0 or seen is None:
            return ("stop" if stop.wait(bounded(left)) else "interval"), seen
        if stop.wait(bounded(min(watch, left))):
            return "stop", seen
        now_pending = first_look(probe)
        if now_pending is None:
            return ("stop" if stop.wait(bounded(until - time.time())) else "interval"), seen
        if now_pending - seen:
            return "new_jobs", now_pending
        seen = now_pending


def _no_watch() -> None:
    return None


def first_look(probe: Callable[[], frozenset[str] | None]) -> frozenset[str] | None:
    """The pending ids, or None when they cannot be read.

    Taken just before each pass, so that anything submitted while the pass
    runs counts as new at the next look, and at every look between passes.
    Any error only means no early wake: the full pass reports it.
    """
    try:
        return probe()
    except Exception:
        return None


def run_loop(cfg: Config, stop: threading.Event, max_passes: int | None = None) -> int:
    """Start the status API and reconcile until ``stop``; raise DaemonError
    (or, from build_engine, ConfigError or CloudError) when the daemon cannot start."""
    engine = build_engine(cfg, log=log)
    # Fails closed: anything but an explicit "none" means the token.
    token = None if cfg.status_auth == "none" else status_token(cfg.status_token_file)
    status = Status(bounded(cfg.timers.interval))
    server = serve_status(status, cfg.status_listen, token)
    log(
        "started",
        cluster=cfg.cluster,
        interval=cfg.timers.interval,
        watch=cfg.timers.watch,
        status=cfg.status_listen,
        status_auth=cfg.status_auth,
        resources=[r.name for r in cfg.resources],
    )
    try:
        reconcile(engine, cfg, status, stop, max_passes)
    finally:
        server.shutdown()
        server.server_close()
        log("stopped", passes=status.snapshot()["cycles"])
    return 0


def reconcile(engine: Engine, cfg: Config, status: Status, stop: threading.Event, max_passes: int | None) -> None:
    """Pass after pass until ``stop`` (or ``max_passes``).

    No failed pass ends the loop: a WLM or cloud that does not answer, an
    answer the engine cannot read, a bug hit by one node: the next pass may
    well succeed, and meanwhile the status API keeps serving and the admin's
    controls keep working. Failures in a row space the passes out.
    """
    interval, watch = bounded(cfg.timers.interval), bounded(cfg.timers.watch)
    # An adapter without a cheap pending watch is asked nothing between
    # passes: the wait runs to the next pass.
    probe = engine.wlm.pending_ids if engine.wlm.supports(Capability.PENDING_WATCH) else _no_watch
    secrets = config_secrets(cfg)
    passes = failures = 0
    while not stop.is_set():
        started = time.time()
        seen = first_look(probe) if watch > 0 else None
        try:
            result = engine.run_once()
            due = next_due(result.observed, cfg, result.plan, started)
            until = next_pass_at(started, interval, watch, due)
            out = result.to_dict()
            status.update(cycles=passes + 1, last_pass=started, result=out, error=None, consecutive_failures=0)
            failures = 0
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
        except Exception as exc:
            failures += 1
            delay = retry_after(failures, interval, watch)
            until = time.time() + delay
            seen = None  # new jobs do not cut a back-off short
            failure = explain(exc, secrets, during="")
            status.update(cycles=passes + 1, error=failure.message, consecutive_failures=failures)
            log(
                "pass_failed",
                error=failure.message,
                kind=failure.kind,
                consecutive_failures=failures,
                retry_in=delay,
            )
        passes += 1
        if max_passes is not None and passes >= max_passes:
            break
        why, seen = wait_for_work(stop, until, watch, probe, seen)
        if why == "new_jobs":
            log("woken", reason="new pending jobs", pending=len(seen or ()))
