"""Running the appliance: the worker, the health check, and `serve` for development and the demo."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from appliance.cli.common import emit_json, pass_app
from appliance.health import check_health
from appliance.tasks import create_queue


@click.command("worker")
@pass_app
def worker_command(app) -> None:
    """Run the background worker (huey consumer with its periodic housekeeping)."""
    queue = create_queue(app)
    # An idle consumer polls at most a second apart: an emergency notice must not wait
    # for huey's default ten-second back-off.
    queue.create_consumer(workers=app.config["queue"]["workers"], worker_type="thread",
                          periodic=True, max_delay=1.0).run()


@click.command("health")
@pass_app
def health_command(app) -> None:
    """Print the state of the database, queue and mail as JSON; exit 1 unless all is well."""
    status = check_health(app, create_queue(app))
    emit_json(status)
    sys.exit(0 if status["ok"] else 1)


# The MTA yields the CPU to the pages: during a blast its signing would otherwise take both
# cores and the staff UI and CoCo-net would queue behind it. It still gets all idle CPU.
# systemd/renraku-mta.service sets the same Nice= (a unit test compares them).
MTA_NICE = 10


def gunicorn_command(app) -> list[str]:
    """Return the gunicorn command line for the web UI, from the [web] settings."""
    web = app.config["web"]
    # With a config module gunicorn reads no ./gunicorn.conf.py; without (pin_workers = false) it would read one in
    # the working directory (systemd's is /).
    pinning = ["--config", "python:webui.cpu_pinning"] if web["pin_workers"] else []
    return [sys.executable, "-m", "gunicorn", "--workers", str(web["workers"]), "--worker-class", "webui.front.Worker",
            *pinning, "--bind", web["bind"], "--access-logfile", "-", "webui.front:create_front()"]


@click.command("web")
@pass_app
def web_command(app) -> None:
    """Run the web UI on gunicorn with the [web] settings (the systemd unit's command)."""
    argv = gunicorn_command(app)
    # exec: gunicorn takes this process's place, so systemd's notify socket and signals reach it.
    os.execve(argv[0], argv, dict(os.environ, APPLIANCE_DATA_DIR=str(app.data_dir)))


def service_commands(app) -> dict[str, list[str]]:
    """Return the command line of each service `serve` starts, by name."""
    me = [sys.executable, "-m", "appliance", "--data-dir", str(app.data_dir)]
    return {
        "sink": me + ["mta", "sink"],
        "mta": ["nice", "-n", str(MTA_NICE), *me, "mta", "run"],
        "worker": me + ["worker"],
        "push": me + ["push", "run"],
        "web": me + ["web"],
    }


@click.command("serve")
@pass_app
def serve_command(app) -> None:
    """Run every service in the foreground (web UI, MTA, push, worker, capture sink) until Ctrl-C."""
    env = dict(os.environ, APPLIANCE_DATA_DIR=str(app.data_dir))
    processes = {name: subprocess.Popen(argv, env=env) for name, argv in service_commands(app).items()}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    click.echo(f"web UI: {app.config['web']['base_url']}/  (health: /healthz)")
    click.echo(f"capture sink: {app.config['sink']['bind']} -> {app.config.path('sink', 'dir')}")
    click.echo("Ctrl-C stops everything.")
    while not stopping:
        exited = [name for name, proc in processes.items() if proc.poll() is not None]
        if exited:
            click.echo(f"service stopped unexpectedly: {', '.join(exited)}; stopping the rest", err=True)
            break
        time.sleep(0.5)
    for proc in processes.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in processes.values():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    sys.exit(0 if stopping else 1)


COMMANDS = [worker_command, health_command, web_command, serve_command]
