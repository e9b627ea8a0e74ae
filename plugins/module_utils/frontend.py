# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue shared by the modules, the inventory plugin and the daemon.

Private to the dcaas.cluster collection: turns options into a Config and an
Engine, and the engine's errors into what a person reads, in one place, so
every front end reports bad input and a failing cloud or WLM the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ansible_collections.dcaas.cluster.plugins.module_utils import config as cfgmod
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import Engine, LogFn, make_provider, make_wlm
from ansible_collections.dcaas.cluster.plugins.module_utils.errors import clip, describe, text_of
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import CommandError
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateError, StateStore

ENGINE_ARGS = {
    # It holds the cloud's credentials: modules then call redact.hide_options (see why there).
    "config": {"type": "dict", "no_log": True},
    "config_file": {"type": "path"},
    "state_file": {"type": "path"},
}
ENGINE_MUTUALLY_EXCLUSIVE = [("config", "config_file")]
ENGINE_REQUIRED_ONE_OF = [("config", "config_file")]


def load_config(config: dict | None, config_file: str | None, state_file: str | None = None) -> cfgmod.Config:
    """Raise cfgmod.ConfigError (listing every problem) on bad input."""
    if config is not None:
        cfg = cfgmod.parse(config)
    elif config_file:
        cfg = cfgmod.load(config_file)
    else:
        raise cfgmod.ConfigError(["one of config or config_file is required"])
    if state_file is not None:
        cfg = cfgmod.with_state_file(cfg, state_file)
    return cfg


def build_engine(cfg: cfgmod.Config, log: LogFn | None = None) -> Engine:
    """Raise ConfigError naming the field for a WLM or provider this version lacks or refuses
    (their ValueError), and CloudError('config') for bad provider options."""
    kwargs = {"log": log} if log else {}
    try:
        provider = make_provider(cfg)
        wlm = make_wlm(cfg)
    except ValueError as exc:
        raise cfgmod.ConfigError([str(exc)]) from None
    return Engine(cfg, wlm, provider, StateStore(cfg.state_file), **kwargs)


@dataclass(frozen=True)
class Failure:
    """An error as a person reads it."""

    message: str
    # True: the fix is in the input (config, options), and trying again
    # unchanged fails the same way; False: the cloud, the WLM or this host.
    user_input: bool
    # config, a CloudError kind (quota, capacity, transient), command, state or internal.
    kind: str


def explain(exc: BaseException, secrets: Iterable[str] = (), during: str = "cannot observe the cluster") -> Failure:
    """The one translation of an error for every front end.

    Bad input reads as its own message, which names the field and the fix;
    anything else as ``during: Class: message`` (``Class: message`` without
    ``during``), so that a failing cloud, WLM or host is never taken for bad
    input. Credentials in ``secrets`` are masked before the message is cut.
    """
    if isinstance(exc, cfgmod.ConfigError):
        return Failure(text_of(exc, secrets), True, "config")  # bounded already, problem by problem
    if isinstance(exc, CloudError) and exc.kind == "config":
        return Failure(clip(text_of(exc, secrets)), True, "config")
    if isinstance(exc, CloudError):
        kind = exc.kind
    elif isinstance(exc, CommandError):
        kind = "command"
    elif isinstance(exc, (StateError, OSError)):
        kind = "state"
    else:
        kind = "internal"
    detail = describe(exc, secrets)
    if isinstance(exc, PermissionError):
        detail += "; run as root"
    return Failure(f"{during}: {detail}" if during else detail, False, kind)
