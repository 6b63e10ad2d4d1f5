"""`appliance`: the one command for operators, scripts, systemd units and developers.

Each group of commands lives in its own module; adapters (the MTA) add theirs through
the ``appliance.commands`` entry-point group, so this package never imports them.
"""
from __future__ import annotations

from importlib.metadata import entry_points

import click

from appliance.cli import messages, ops, push, registration, roster, sample, services
from appliance.cli.common import CliState


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="APPLIANCE_DATA_DIR",
              help="The appliance's data dir (or set APPLIANCE_DATA_DIR).")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None) -> None:
    """Renraku appliance: reach every guardian, in ordinary times and in a disaster."""
    ctx.obj = CliState(data_dir)


for module in (ops, roster, messages, sample, services, push, registration):
    for command in module.COMMANDS:
        main.add_command(command)

for entry in entry_points(group="appliance.commands"):
    main.add_command(entry.load(), entry.name)
