"""The appliance as one object: config, database, contact keys and clock for a data dir.

Nothing happens at import time; services and commands call :func:`open_appliance`
once at start-up and pass the result to the core's functions.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from appliance import db, ratelimit
from appliance.clock import SystemClock
from appliance.config import CONFIG_FILE, Config, load_config
from appliance.contacts import ContactSealer
from appliance.keys import load_or_create_key
from appliance.migrations import migrate

TOML_TEMPLATE = """\
# Renraku appliance settings. Defaults live in appliance/config.py; values here
# override them, and APPLIANCE_<SECTION>__<KEY> variables override these.

[site]
name = "{site}"

[mail]
domain = "renraku.example"
"""


@dataclass
class Appliance:
    """Everything a core function needs besides its own arguments."""

    config: Config
    sealer: ContactSealer
    token_key: bytes          # derives the capability tokens in guardians' links
    clock: Any = field(default_factory=SystemClock)
    passwords: PasswordHasher = field(default_factory=PasswordHasher)

    @cached_property
    def limiter(self) -> ratelimit.RateLimiter:
        """The counters that slow down guessing, one per process (it holds each thread's connection to them)."""
        return ratelimit.open_limiter(self)

    @property
    def site(self) -> str:
        """This site's name, written on every fact."""
        return self.config["site"]["name"]

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir


def open_appliance(data_dir: str | os.PathLike, *, environ: Mapping[str, str] | None = None,
                   overrides: Mapping | None = None, clock: Any = None) -> Appliance:
    """Load config, open the database and keys of an initialised data dir."""
    config = load_config(data_dir, environ=environ, overrides=overrides)
    if not config.path("db", "path").exists():
        raise FileNotFoundError(
            f"{config.data_dir} is not an initialised data dir: run `appliance init` first")
    db.open_database(config.path("db", "path"), config["db"]["busy_timeout_ms"])
    sealer = ContactSealer(load_or_create_key(config.path("keys", "contacts")))
    token_key = load_or_create_key(config.path("keys", "tokens"))
    cost = config["passwords"]
    passwords = PasswordHasher(time_cost=cost["time_cost"], memory_cost=cost["memory_kib"],
                               parallelism=cost["parallelism"])
    return Appliance(config=config, sealer=sealer, token_key=token_key, clock=clock or SystemClock(),
                     passwords=passwords)


def init_data_dir(data_dir: str | os.PathLike, *, environ: Mapping[str, str] | None = None,
                  overrides: Mapping | None = None, clock: Any = None) -> Appliance:
    """Create the data dir, its settings file, keys and schema; safe to run again."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    toml_path = data_dir / CONFIG_FILE
    if not toml_path.exists():
        toml_path.write_text(TOML_TEMPLATE.format(site=os.uname().nodename), encoding="utf-8")
    config = load_config(data_dir, environ=environ, overrides=overrides)
    for key in ("contacts", "tokens", "web_secret"):   # made once, here, not raced by workers
        load_or_create_key(config.path("keys", key))
    db.open_database(config.path("db", "path"), config["db"]["busy_timeout_ms"])
    migrate()
    return open_appliance(data_dir, environ=environ, overrides=overrides, clock=clock)
