"""The one config loader: defaults, then ``appliance.toml`` in the data dir, then ``APPLIANCE_*``.

Environment variables name a setting as ``APPLIANCE_<SECTION>__<KEY>`` (two underscores
between section and key), e.g. ``APPLIANCE_WEB__PORT=8080``. Any setting may instead be
given as a file with the ``_FILE`` suffix (``APPLIANCE_WEB__SECRET_KEY_FILE=/run/keys/web``),
which is how secrets are passed. Tests pass a mapping of overrides.
"""
from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE = "appliance.toml"
ENV_PREFIX = "APPLIANCE_"

DEFAULTS: dict[str, dict[str, Any]] = {
    "site": {
        "name": "renraku",          # this appliance's site name, written on every fact
        "timezone": "Asia/Tokyo",
    },
    "db": {
        "path": "appliance.db",     # relative paths are under the data dir
        "busy_timeout_ms": 10000,
    },
    "queue": {
        "path": "queue.db",         # huey's own SQLite file, local to the site
        "workers": 2,
    },
    "keys": {
        "contacts": "keys/contacts.key",   # AES-GCM key for contact points (0600)
        "web_secret": "keys/web-secret.key",
        "tokens": "keys/tokens.key",        # derives guardians' link tokens (0600)
    },
    "passwords": {                  # argon2id for staff passwords (RFC 9106's second choice)
        "time_cost": 3,
        "memory_kib": 65536,
        "parallelism": 4,
    },
    "web": {
        "bind": "127.0.0.1:8080",
        "workers": 2,
        "pin_workers": True,        # each worker on a CPU of its own (webui/cpu_pinning.py)
        "base_url": "http://127.0.0.1:8080",
        "secret_key": "",           # empty: read from keys.web_secret
    },
    "mail": {
        "domain": "renraku.example",    # the appliance's own mail domain
        "from_name": "連絡網",
    },
    "mta": {
        "helo_name": "",                # empty: the mail domain
        "bounce_domain": "",            # VERP envelope senders live here; empty: the mail domain
        "nameservers": [],              # for MX, and DKIM/SPF of inbound mail; empty: the system's resolvers
        "transport": {},                # domain -> "host:port" relay; "*" relays every domain
        "dkim_selector": "renraku",
        "dkim_ed25519": False,          # add an Ed25519 signature beside the RSA one
        "sign_workers": 0,              # processes signing mail; 0: one per core
        "iso2022jp_domains": [],        # feature-phone domains that need ISO-2022-JP mail
        "domains": {},                  # per-domain limit overrides, see mta/policy.py
        "status_file": "run/mta-status.json",   # the running MTA's own view, for status and health
        # Inbound SMTP (mta/inbound.py: bounces, replies, empty-mail registration, enquiries), started by
        # `appliance mta run` when set and by `appliance mta inbound`. Loopback for development;
        # production binds port 25 on the public address ("0.0.0.0:25"); empty: not started by `mta run`.
        "inbound_bind": "127.0.0.1:2526",
        "inbound_max_bytes": 2 * 1024 * 1024,   # a reply's 1 MB of files is ~1.4 MB in base64, plus text
        "inbound_max_connections": 10,          # at once per client address
        "inbound_timeout": 120,                 # seconds a client may stay silent
    },
    "ratelimit": {
        "path": "ratelimit.db",         # counters against guessing, local to the site (appliance/ratelimit.py)
    },
    "push": {
        "vapid_key": "keys/vapid.pem",  # made by `appliance push init` (0600)
        "subject": "",                  # the VAPID contact; empty: mailto:noreply@<mail domain>
        # Push services a subscription may point at (host or parent domain): the worker
        # POSTs to the endpoint, so a guardian must not be able to aim it anywhere else.
        "endpoint_hosts": ["fcm.googleapis.com", "push.services.mozilla.com", "push.apple.com",
                           "notify.windows.com"],
        "concurrency": 16,              # requests in flight
        "batch": 200,                   # deliveries claimed at a time
    },
    "sink": {
        "bind": "127.0.0.1:2525",       # the demo's capture sink
        "dir": "sink",
    },
}


class ConfigError(ValueError):
    """A setting is unknown or cannot be read as the type its default has."""


@dataclass(frozen=True)
class Config:
    """Settings after all layers are applied, with paths resolved against the data dir."""

    data_dir: Path
    values: Mapping[str, Mapping[str, Any]]

    def __getitem__(self, section: str) -> Mapping[str, Any]:
        return self.values[section]

    def path(self, section: str, key: str) -> Path:
        """Return a path setting, made absolute under the data dir."""
        return self.data_dir / self.values[section][key]


def _coerce(section: str, key: str, raw: Any, default: Any) -> Any:
    name = f"{section}.{key}"
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if isinstance(default, dict):
        if isinstance(raw, str):   # from the environment: "key=value,key=value"
            pairs = [item.partition("=") for item in raw.split(",") if item.strip()]
            if any(not sep for _, sep, _ in pairs):
                raise ConfigError(f"{name}: expected key=value pairs separated by commas, got {raw!r}")
            return {key.strip(): value.strip() for key, _, value in pairs}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{name}: expected a table")
        return dict(raw)
    if isinstance(default, list):
        if isinstance(raw, str):
            return [item.strip() for item in raw.split(",") if item.strip()]
        return list(raw)
    return str(raw)


def _merge(values: dict, layer: Mapping, origin: str) -> None:
    for section, entries in layer.items():
        if section not in DEFAULTS:
            raise ConfigError(f"{origin}: unknown section [{section}]")
        if not isinstance(entries, Mapping):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        for key, raw in entries.items():
            if key not in DEFAULTS[section]:
                raise ConfigError(f"{origin}: unknown setting {section}.{key}")
            values[section][key] = _coerce(section, key, raw, DEFAULTS[section][key])


def _env_layer(environ: Mapping[str, str]) -> dict:
    layer: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue  # APPLIANCE_DATA_DIR and friends are not settings
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if key.endswith("_file"):
            key = key[: -len("_file")]
            try:
                raw = Path(raw).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{name}: cannot read {raw}: {exc.strerror}") from None
        layer.setdefault(section, {})[key] = raw
    return layer


def load_config(
    data_dir: str | os.PathLike,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Load settings for a data dir: defaults, the TOML file, the environment, then overrides."""
    data_dir = Path(data_dir).resolve()
    values = copy.deepcopy(DEFAULTS)
    toml_path = data_dir / CONFIG_FILE
    if toml_path.exists():
        try:
            layer = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{toml_path}: {exc}") from None
        _merge(values, layer, str(toml_path))
    _merge(values, _env_layer(os.environ if environ is None else environ), "environment")
    if overrides:
        _merge(values, overrides, "overrides")
    return Config(data_dir=data_dir, values=values)


def resolve_data_dir(option: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """Return the data dir from ``--data-dir`` or ``APPLIANCE_DATA_DIR``."""
    environ = os.environ if environ is None else environ
    chosen = option or environ.get("APPLIANCE_DATA_DIR")
    if not chosen:
        raise ConfigError("no data dir: pass --data-dir or set APPLIANCE_DATA_DIR")
    return Path(chosen).resolve()
