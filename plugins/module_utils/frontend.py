# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue shared by the modules, the inventory plugin and the daemon.

Private to the dcaas.cluster collection: turns options into a Config and an
Engine in one place, so every front end reports bad input the same way.
"""

from __future__ import annotations

from ansible_collections.dcaas.cluster.plugins.module_utils import config as cfgmod
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import Engine, LogFn, make_provider, make_wlm
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore

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
    """Raise ValueError naming the field for an unavailable WLM or provider, or bad provider options."""
    kwargs = {"log": log} if log else {}
    try:
        provider = make_provider(cfg)
    except CloudError as exc:
        raise ValueError(str(exc)) from None
    return Engine(cfg, make_wlm(cfg), provider, StateStore(cfg.state_file), **kwargs)
