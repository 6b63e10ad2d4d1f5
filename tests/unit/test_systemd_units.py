"""systemd units are code: they must pass `systemd-analyze verify` and name real commands."""
import shlex
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import click
import pytest

from appliance.cli import main
from appliance.cli.services import MTA_NICE

UNITS = sorted((Path(__file__).resolve().parents[2] / "systemd").glob("*.service"))
INSTALLED_BIN = "/opt/renraku/venv/bin/"


def _exec_start(unit: Path) -> list[str]:
    parser = ConfigParser(interpolation=None, strict=False)
    parser.read(unit)
    return shlex.split(parser["Service"]["ExecStart"])


def test_units_verify(tmp_path):
    venv_bin = str(Path(sys.executable).parent) + "/"
    for unit in UNITS:
        text = unit.read_text().replace(INSTALLED_BIN, venv_bin)
        # verify checks that User= exists; the renraku user is made at install time.
        text = text.replace("User=renraku", "User=root").replace("Group=renraku", "Group=root")
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(tmp_path.iterdir()))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_appliance_commands_in_units_exist(unit):
    argv = _exec_start(unit)
    if not argv[0].endswith("/appliance"):
        return
    context = click.Context(main)
    command = main
    for word in argv[1:]:
        if word.startswith("-"):
            break
        command = command.get_command(context, word)
        assert command is not None, f"{unit.name}: no command {word!r}"


def test_the_mta_unit_runs_below_the_web_ui_as_serve_does():
    unit = next(u for u in UNITS if u.name == "renraku-mta.service").read_text(encoding="utf-8")
    assert f"\nNice={MTA_NICE}\n" in unit
