"""The capture sink: an SMTP server that keeps every message it is given as a file.

The demo routes all mail here (``[mta] transport``) so that nothing leaves the machine and every
mail can be looked at. Each message is written to ``<sink dir>/<time>-<n>.eml``
(temporary name, then renamed) before the 250 is given.
"""
from __future__ import annotations

import itertools
import os
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller


class CaptureHandler:
    """aiosmtpd handler: accept everything, store it, say 250."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count()

    async def handle_DATA(self, server, session, envelope) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(self._counter):06d}"
        header = "".join(f"X-Sink-Rcpt-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        header = f"X-Sink-Mail-From: {envelope.mail_from}\r\n" + header
        temporary = self.directory / f".{name}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(header.encode() + envelope.original_content)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(self.directory / f"{name}.eml")
        return "250 2.0.0 captured"


def start_sink(directory: Path, host: str, port: int) -> Controller:
    """Start the sink on host:port in a background thread; the caller stops it."""
    controller = Controller(CaptureHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


def read_captured(directory: Path, limit: int | None = None) -> list[EmailMessage]:
    """Return captured messages, newest first."""
    paths = sorted(directory.glob("*.eml"), reverse=True)[:limit]
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in paths]
