"""What every CLI command shares: the appliance for --data-dir, JSON output, error mapping."""
from __future__ import annotations

import functools
import json
import signal
import sys
import threading

import click

from appliance.config import ConfigError, resolve_data_dir
from appliance.errors import ApplianceError
from appliance.runtime import open_appliance


class CliState:
    """Holds --data-dir and opens the appliance on first use (no work at import time)."""

    def __init__(self, data_dir: str | None):
        self.data_dir_option = data_dir
        self._app = None

    @property
    def data_dir(self):
        return resolve_data_dir(self.data_dir_option)

    @property
    def app(self):
        if self._app is None:
            self._app = open_appliance(self.data_dir)
        return self._app


def pass_app(command):
    """Give a command the opened Appliance as its first argument, and map core errors to exit 1."""

    @functools.wraps(command)
    @click.pass_obj
    def wrapper(state: CliState, *args, **kwargs):
        with user_errors():
            return command(state.app, *args, **kwargs)

    return wrapper


class user_errors:
    """Turn the core's typed errors into one clear line on stderr and exit code 1."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None:
            return False
        if isinstance(exc, (ApplianceError, ConfigError, FileNotFoundError)):
            click.echo(f"エラー: {exc}", err=True)
            sys.exit(1)
        return False


def stop_signal() -> threading.Event:
    """An event SIGINT or SIGTERM sets: a service command runs until it is set, then stops cleanly."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def emit_json(value) -> None:
    """Print one JSON document, Japanese left readable."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))
