"""`appliance push ...`: the VAPID keys and the push worker."""
from __future__ import annotations

import click

from appliance import push
from appliance.cli.common import emit_json, pass_app, stop_signal
from appliance.errors import InvalidInput


@click.group("push")
def push_group() -> None:
    """Web Push: keys and the worker that sends due push deliveries."""


@push_group.command("init")
@pass_app
def push_init(app) -> None:
    """Make the VAPID key pair (once; mode 0600) and print the public key."""
    emit_json({"vapid_public_key": push.init_keys(app), "key_file": str(app.config.path("push", "vapid_key"))})


@push_group.command("run")
@pass_app
def push_run(app) -> None:
    """Run the push worker until SIGTERM or Ctrl-C (deliveries are leased: a kill loses nothing)."""
    if push.public_key(app) is None:
        raise InvalidInput("VAPIDキーがありません。先に `appliance push init` を実行してください")
    push.run(app, push.WebPushSender(app), stop_signal())


COMMANDS = [push_group]
