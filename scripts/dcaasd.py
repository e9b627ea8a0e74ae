# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dcaasd: the Dynamic Cluster engine's daemon and control command.

    dcaasd run                 reconcile in a loop; SIGTERM ends it after the current pass
    dcaasd once [--check]      one pass (--check: print the plan, change nothing)
    dcaasd status [--json]     the running daemon's last pass, from its status API (as root:
                               it sends the token in status_token_file)
    dcaasd auto on|off         automatic mode (off: plan and report only)
    dcaasd freeze | thaw       keep the cluster at its size / let it scale again
    dcaasd drain RESOURCE      no launches there; its idle nodes drain and go
    dcaasd restore RESOURCE    put a drained resource back in service
    dcaasd hold NODE           never drain or delete this node
    dcaasd unhold NODE

The collection must be importable: the dynamic_cluster role installs it under
/opt/dcaas/collections and sets PYTHONPATH in the service unit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time

# An installed collection: <collections>/ansible_collections/dcaas/cluster/scripts/dcaasd.
# (A checkout: `make` links it as build/collections/ansible_collections/dcaas/cluster.)
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 4))
if os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "dcaas", "cluster")):
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config  # noqa: E402
from ansible_collections.dcaas.cluster.plugins.module_utils.daemon import (  # noqa: E402
    DaemonError,
    describe,
    log,
    parse_listen,
    read_status_token,
    run_loop,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import (  # noqa: E402
    build_engine,
    explain,
    load_config,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.redact import config_secrets  # noqa: E402
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore, change_controls  # noqa: E402

DEFAULT_CONFIG = os.environ.get("DCAAS_CONFIG", "/etc/dcaas/engine.json")
# A status answer is a few kilobytes per resource; more is not the daemon's.
STATUS_MAX_BYTES = 16 * 1024 * 1024


def fetch_status(listen: str, token: str | None) -> dict:
    """The daemon's status; DaemonError for an answer that is not one, OSError if none comes."""
    host, port = parse_listen(listen)
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/status", headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        body = response.read(STATUS_MAX_BYTES)
    finally:
        conn.close()
    if response.status == 401:
        raise DaemonError(
            f"the status API at {listen} refused the token in the status_token_file: if the file was "
            "replaced since the daemon started, restart it (systemctl restart dcaas-engine)"
            if token
            else f"the status API at {listen} wants a token: set status_auth: token in the config (the default)"
        )
    try:
        data = json.loads(body) if response.status == 200 else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise DaemonError(f"the status API at {listen} answered HTTP {response.status} without a status")
    return data


def print_status(data: dict) -> None:
    result = data.get("result") or {}
    last = data.get("last_pass")
    when = time.strftime("%H:%M:%S", time.localtime(last)) if last else "-"
    print(f"passes: {data.get('cycles')}  last: {when}")
    if data.get("error"):
        print(f"last pass failed ({data.get('consecutive_failures')} in a row): {data['error']}")
    print(f"jobs: {result.get('pending_jobs', 0)} pending, {result.get('running_jobs', 0)} running")
    for res, states in sorted((result.get("node_counts") or {}).items()):
        print(f"  {res:20s} " + "  ".join(f"{k}={v}" for k, v in sorted(states.items())))
    for unfit in (result.get("plan") or {}).get("unfit_jobs", []):
        print(f"  job {unfit['job']} can never run: {unfit['reason']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcaasd", description="Dynamic Cluster engine daemon and control")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"engine configuration (default {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="reconcile in a loop")
    sub.add_parser("once", help="one reconcile pass").add_argument(
        "--check", action="store_true", help="print the plan, change nothing"
    )
    sub.add_parser("status", help="the running daemon's last pass").add_argument("--json", action="store_true")
    auto = sub.add_parser("auto", help="automatic mode on or off")
    auto.add_argument("mode", choices=["on", "off"])
    sub.add_parser("freeze", help="keep the cluster at its current size")
    sub.add_parser("thaw", help="undo freeze")
    for verb, what in (("drain", "RESOURCE"), ("restore", "RESOURCE"), ("hold", "NODE"), ("unhold", "NODE")):
        sub.add_parser(verb, help=f"{verb} a {what.lower()}").add_argument("name", metavar=what)
    args = parser.parse_args(argv)

    command = {"run": run, "once": once, "status": status}.get(args.cmd, control)
    cfg = None
    try:
        cfg = load_config(None, args.config)
        return command(cfg, args)
    except KeyboardInterrupt:
        return 130
    except DaemonError as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:
        # One line an admin can act on, never a traceback: whatever the
        # state file, the WLM or the cloud holds, the command says what failed.
        failure = explain(exc, config_secrets(cfg) if cfg else (), during=f"dcaasd {args.cmd} failed")
        print(failure.message, file=sys.stderr)
        # Bad input: 2, on which the unit does not restart `dcaasd run`
        # (it would fail the same way until the admin acts).
        return 2 if failure.user_input else 1


def run(cfg: Config, _args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_args: stop.set())
    try:
        return run_loop(cfg, stop)
    except DaemonError as exc:
        # Cannot start as configured: exit 2, as for bad input (see main).
        print(exc, file=sys.stderr)
        return 2


def once(cfg: Config, args: argparse.Namespace) -> int:
    result = build_engine(cfg, log=log).run_once(check_mode=args.check)
    print(json.dumps(result.to_dict(), indent=1))
    return 1 if result.errors else 0


def status(cfg: Config, args: argparse.Namespace) -> int:
    token = None if cfg.status_auth == "none" else read_status_token(cfg.status_token_file)
    try:
        data = fetch_status(cfg.status_listen, token)
    except (OSError, http.client.HTTPException) as exc:
        raise DaemonError(f"the daemon's status API at {cfg.status_listen} does not answer: {describe(exc)}") from None
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print_status(data)
    return 0


def control(cfg: Config, args: argparse.Namespace) -> int:
    if args.cmd in ("drain", "restore") and cfg.resource(args.name) is None:
        names = ", ".join(r.name for r in cfg.resources)
        print(f"unknown resource {args.name!r}; configured resources: {names}", file=sys.stderr)
        return 2
    changes = {
        "auto": {"on": True, "off": False}.get(getattr(args, "mode", None)),
        "frozen": {"freeze": True, "thaw": False}.get(args.cmd),
        "drain_resources": [args.name] if args.cmd == "drain" else [],
        "restore_resources": [args.name] if args.cmd == "restore" else [],
        "hold_nodes": [args.name] if args.cmd == "hold" else [],
        "unhold_nodes": [args.name] if args.cmd == "unhold" else [],
    }
    controls, changed = change_controls(StateStore(cfg.state_file), changes)
    print(json.dumps({"changed": changed, "controls": controls.to_dict()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
