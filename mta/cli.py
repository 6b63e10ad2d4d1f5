"""`appliance mta ...` commands, added to the core CLI through an entry point."""
from __future__ import annotations

import signal
import threading

import click

from appliance.cli.common import emit_json, pass_app
from appliance.clock import to_tokyo
from mta.sink import read_captured, start_sink


@click.group("mta")
def mta() -> None:
    """Mail transfer: the capture sink (the own MTA arrives with its issue)."""


@mta.command("sink")
@pass_app
def sink_run(app) -> None:
    """Run the capture sink on [sink] bind until stopped; every mail is kept as a file."""
    host, _, port = app.config["sink"]["bind"].rpartition(":")
    directory = app.config.path("sink", "dir")
    controller = start_sink(directory, host, int(port))
    click.echo(f"capture sink on {host}:{port}, writing to {directory}")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    controller.stop()


@mta.command("captured")
@click.option("--limit", default=20, show_default=True)
@pass_app
def sink_list(app, limit: int) -> None:
    """List the newest mails in the capture sink (demo only: shows addresses)."""
    emit_json([
        {"to": mail["X-Sink-Rcpt-To"], "subject": mail["Subject"],
         "date": to_tokyo(mail["Date"].datetime).isoformat() if mail["Date"] else None,
         "body": mail.get_body(("plain",)).get_content()[:400]}
        for mail in read_captured(app.config.path("sink", "dir"), limit)])
