"""Sending commands: count an audience, create a message with its deliveries, follow it up."""
from __future__ import annotations

from pathlib import Path

import click

from appliance.cli.common import emit_json, pass_app
from appliance.clock import parse_time
from appliance.errors import InvalidInput, NotFound
from appliance.followup import message_stats
from appliance.messages import create_message, message_summary
from appliance.models import Message
from appliance.models.message import CHANNELS, PRIORITIES
from appliance.schools import get_school
from appliance.targeting import count_audience, parse_rule

RULE_HELP = 'Targeting rule, e.g. "grade:3 AND NOT club:soccer" (see appliance/targeting.py).'


@click.command("audience")
@click.option("--school", "school_code", required=True, help="School code.")
@click.argument("rule")
@pass_app
def audience_command(app, school_code: str, rule: str) -> None:
    """Count the enrolled students and the guardians RULE reaches."""
    emit_json(count_audience(get_school(school_code), parse_rule(rule)))


@click.command("send")
@click.option("--school", "school_code", required=True, help="School code.")
@click.option("--audience", required=True, help=RULE_HELP)
@click.option("--subject", required=True)
@click.option("--body-file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The body, as a UTF-8 text file.")
@click.option("--priority", type=click.Choice(PRIORITIES), default="normal", show_default=True)
@click.option("--reply-needed", is_flag=True, help="Ask guardians to reply.")
@click.option("--at", "send_at", metavar="ISO-TIME",
              help="When to send (default now); a time without offset is Tokyo time.")
@click.option("--expires", "expires_at", metavar="ISO-TIME", help="Stop trying to deliver after this time.")
@click.option("--channel", "channels", type=click.Choice(CHANNELS), multiple=True, default=("email",),
              show_default=True, help="Repeat for several channels.")
@pass_app
def send_command(app, school_code: str, audience: str, subject: str, body_file: Path, priority: str,
                 reply_needed: bool, send_at: str | None, expires_at: str | None,
                 channels: tuple[str, ...]) -> None:
    """Create a message, snapshot its recipients and queue its deliveries."""
    school = get_school(school_code)
    message = create_message(
        app, school, audience=audience, subject=subject, body=_read_body(body_file), priority=priority,
        reply_needed=reply_needed, send_at=_parse_option_time("--at", send_at),
        expires_at=_parse_option_time("--expires", expires_at), channels=channels)
    emit_json(message_summary(message))


def _read_body(path: Path) -> str:
    # utf-8-sig: files saved by Windows Notepad start with a byte-order mark.
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"本文ファイルがありません: {path}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"本文ファイルが UTF-8 ではありません: {path}（{exc.start + 1}バイト目）") from None
    except OSError as exc:
        raise InvalidInput(f"本文ファイルを読めません: {path}（{exc.strerror}）") from None


def _parse_option_time(option: str, text: str | None):
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise InvalidInput(f"{option} の日時を読めません: {text!r}（例: 2026-04-07T08:00）") from None


@click.group("message")
def message_group() -> None:
    """Messages already created: their figures."""


@message_group.command("stats")
@click.argument("message_id")
@pass_app
def message_stats_command(app, message_id: str) -> None:
    """Print MESSAGE_ID's recipients, deliveries by channel and state, readers and answerers."""
    message = Message.get_or_none(Message.id == message_id)
    if message is None:
        raise NotFound(f"ID {message_id} の連絡はありません")
    emit_json(message_stats(message))


COMMANDS = [audience_command, send_command, message_group]
