"""Capability tokens: the unguessable part of a guardian's links (read report, unsubscribe, ...).

A token is 128 bits: a MAC (keyed BLAKE2b) of (scope, guardian, message) under a key in the data
dir. The same grant therefore always gets the same token, so rendering a guardian's
mail again after a crash gives the same link and adds no row; without the key it
cannot be guessed. Only the token's SHA-256 is stored: a copy of the database (a
backup, a peer site) holds no working link. A link is resolved by looking its hash
up in the unique index; the token itself is never compared, so how long an answer
takes says nothing about a valid token.

A token is valid until the expiry it was first stored with: issuing it again does
not extend it.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance import db
from appliance.errors import NotFound
from appliance.ids import uuid7
from appliance.models import CapabilityToken

# A CoCo-net link is one per guardian (no message) and is printed on the family's
# sheet, so it must outlive a school year; the page it opens shows nothing until the
# school opens an event.
# System mails' links (appliance/system_mail.py): a sign-in link is short-lived and
# used once; an address confirmation (and a registration's link, appliance/registration.py)
# waits a week for a guardian who reads mail rarely.
LIFETIMES = {"read": timedelta(days=90), "unsubscribe": timedelta(days=90), "coconet": timedelta(days=400),
             "signin": timedelta(hours=1), "confirm": timedelta(days=7), "register": timedelta(days=7),
             "reply": timedelta(days=90)}     # a mail reply's address (appliance/mail.py reply_address)
PATHS = {"read": "r", "unsubscribe": "u", "coconet": "c",    # links are <[web] base_url>/<path>/<token>
         "signin": "p/in", "confirm": "p/confirm", "register": "e/ok"}
MAX_LENGTH = 64       # tokens are 22 characters; longer input is refused before hashing

_FIELDS = [CapabilityToken.id, CapabilityToken.token_hash, CapabilityToken.scope, CapabilityToken.guardian,
           CapabilityToken.message, CapabilityToken.expires_at, CapabilityToken.created_at]
# Every value is bound as stored: the two times are converted once per call, not per
# row (40,000 conversions of the same two times were a third of a blast's issue time).
# ON CONFLICT ... DO NOTHING reads the same in PostgreSQL.
_INSERT = (f'INSERT INTO {{table}} ({", ".join(f.column_name for f in _FIELDS)})'
           f' VALUES ({db.placeholders(len(_FIELDS))}) ON CONFLICT (token_hash) DO NOTHING')
# Plain SQL: guardian pages resolve a token per request, and building the query with
# peewee cost five times the lookup itself.
_RESOLVE = "SELECT scope, guardian_id, message_id, expires_at FROM capability_token WHERE token_hash = {p}"


class InvalidToken(NotFound):
    """A link's token is unknown, expired or for another purpose; the user sees one message for all three."""

    def __init__(self, reason: str):
        super().__init__("このリンクは無効か、有効期限が切れています。")
        self.reason = reason     # unknown, expired or scope: for logs and tests, never for the user


@dataclass(frozen=True)
class TokenGrant:
    """What a valid token grants: one guardian, and the message it was issued for (if any)."""

    guardian_id: str
    message_id: str | None


def issue_tokens(app, scope: str, pairs: Iterable[tuple[str, str | None]],
                 expires_at: datetime | None = None) -> dict[tuple[str, str | None], str]:
    """Return a token per (guardian id, message id), storing the hashes not stored yet (one statement)."""
    if scope not in LIFETIMES:
        raise ValueError(f"unknown token scope: {scope!r}")
    now = app.clock.now()
    expires_at = now + LIFETIMES[scope] if expires_at is None else expires_at
    key = app.token_key
    issued = {pair: _derive(key, scope, *pair) for pair in pairs}
    if not issued:          # a batch of emergency mail has no unsubscribe tokens: no write lock for nothing
        return issued
    expires, created = CapabilityToken.expires_at.db_value(expires_at), CapabilityToken.created_at.db_value(now)
    rows = [(uuid7(), digest(token), scope, guardian_id, message_id, expires, created)
            for (guardian_id, message_id), token in issued.items()]
    with db.write():
        db.execute_many(CapabilityToken, _INSERT, None, rows)
    return issued


def resolve_token(app, token: str, scope: str) -> TokenGrant:
    """Return what a token grants for a scope, or raise InvalidToken."""
    if not well_formed(token):
        raise InvalidToken("unknown")
    found = db.fetch(_RESOLVE, (digest(token),))
    if not found:
        raise InvalidToken("unknown")
    found_scope, guardian_id, message_id, expires_at = found[0]
    if found_scope != scope:
        raise InvalidToken("scope")
    if CapabilityToken.expires_at.python_value(expires_at) <= app.clock.now():
        raise InvalidToken("expired")
    return TokenGrant(guardian_id, message_id)


def well_formed(token: str) -> bool:
    """Whether a link's token may be looked up at all (longer or non-ASCII input is refused unhashed)."""
    return bool(token) and len(token) <= MAX_LENGTH and token.isascii()


def revoke_token(token: str) -> bool:
    """Delete a token (a used sign-in link); return whether it was there."""
    with db.write():
        return CapabilityToken.delete().where(CapabilityToken.token_hash == digest(token)).execute() > 0


def token_url(app, scope: str, token: str) -> str:
    """Return the guardian link that carries a token."""
    return f"{app.config['web']['base_url'].rstrip('/')}/{PATHS[scope]}/{token}"


def _derive(key: bytes, scope: str, guardian_id: str, message_id: str | None) -> str:
    grant = f"{scope}\n{guardian_id}\n{message_id or ''}".encode()
    # Keyed BLAKE2b is a MAC (RFC 7693) and one C call: a blast derives 40,000 of these.
    return base64.urlsafe_b64encode(hashlib.blake2b(grant, key=key, digest_size=16).digest()).rstrip(b"=").decode()


def digest(token: str) -> bytes:
    """The token's SHA-256: what is stored and looked up."""
    return hashlib.sha256(token.encode()).digest()


def purge_expired(app) -> int:
    """Delete tokens past their expiry (their links already answer as unknown); return how many."""
    with db.write():
        return CapabilityToken.delete().where(CapabilityToken.expires_at < app.clock.now()).execute()
