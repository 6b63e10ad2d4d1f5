"""Guardians' contact points: the only module that reads or writes them.

Values are sealed with AES-GCM (key in the data dir, mode 0600); the row's guardian
and kind are bound in as associated data, so a sealed value copied to another row
does not open. A keyed hash of the normalised value (``lookup``) finds an address
without decrypting the table. School roles get counts and states, never values.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import peewee
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance import audit, db
from appliance.errors import InvalidInput, LimitReached, NotFound
from appliance.models import ContactPoint

MAX_PER_KIND = {"email": 4, "push": 4, "phone": 1, "fax": 1}
LIVE_STATUSES = ("pending", "active", "suspended")

# Japanese carriers issued addresses that break RFC 5322 (``taro..x.@docomo.ne.jp``),
# so the local part is only required to be printable ASCII without spaces or '@'.
_EMAIL = re.compile(r"^[!-?A-~]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]{16,200}={0,2}$")


class ContactSealer:
    """Seals and opens contact values, and makes their lookup hashes, with one data-dir key."""

    def __init__(self, key: bytes):
        def derive(purpose: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)

        self._aead = AESGCM(derive(b"renraku contact seal"))
        self._mac_key = derive(b"renraku contact lookup")

    def seal(self, guardian_id: str, kind: str, value: str) -> bytes:
        """Encrypt a normalised value for one guardian's row."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), f"{guardian_id}/{kind}".encode())

    def open(self, guardian_id: str, kind: str, sealed: bytes) -> str:
        """Decrypt a value sealed for this guardian and kind."""
        sealed = bytes(sealed)
        return self._aead.decrypt(sealed[:12], sealed[12:], f"{guardian_id}/{kind}".encode()).decode()

    def lookup(self, kind: str, value: str) -> str:
        """Return the keyed hash that finds a normalised value."""
        return hmac.new(self._mac_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def normalise(kind: str, value: str) -> str:
    """Return the canonical form of a contact value, or raise InvalidInput."""
    value = value.strip()
    if kind == "email":
        local, _, domain = value.rpartition("@")
        candidate = f"{local}@{domain.lower()}"
        if len(candidate) > 254 or not _EMAIL.match(candidate):
            raise InvalidInput("メールアドレスの形式が正しくありません")   # never echo contact data: errors reach logs
        return candidate
    if kind in ("phone", "fax"):
        digits = re.sub(r"[\s\-()]", "", value)
        if not _PHONE.match(digits):
            raise InvalidInput("電話番号の形式が正しくありません")
        return digits
    if kind == "push":
        return _normalise_subscription(value)
    raise InvalidInput(f"連絡先の種類が不明です: {kind!r}")


def _normalise_subscription(value: str) -> str:
    """A Web Push subscription (the browser's PushSubscription.toJSON()) as canonical JSON."""
    refused = InvalidInput("プッシュ購読情報の形式が正しくありません")
    try:
        data = json.loads(value)
        endpoint, keys = data["endpoint"], data["keys"]
        p256dh, auth = keys["p256dh"], keys["auth"]
    except (ValueError, TypeError, KeyError):
        raise refused from None
    if not all(isinstance(v, str) for v in (endpoint, p256dh, auth)) or len(endpoint) > 1000:
        raise refused
    if not endpoint.startswith(("https://", "http://")) or not _B64URL.match(p256dh) or not _B64URL.match(auth):
        raise refused
    return json.dumps({"endpoint": endpoint, "keys": {"auth": auth, "p256dh": p256dh}}, sort_keys=True,
                      separators=(",", ":"))


def add_contacts(app, guardian_id: str, kind: str, values: list[str], *, status: str = "pending",
                 label: str = "") -> list[ContactPoint]:
    """Add contact points to a guardian in the free slots; refuse duplicates and going past the limit."""
    normalised = [normalise(kind, value) for value in values]
    lookups = [app.sealer.lookup(kind, value) for value in normalised]
    if len(set(lookups)) != len(lookups):
        raise InvalidInput("同じ連絡先が二度指定されています")
    with db.write():
        live = list(ContactPoint.select(ContactPoint.position, ContactPoint.lookup).where(
            (ContactPoint.guardian == guardian_id) & (ContactPoint.kind == kind)
            & ContactPoint.status.in_(LIVE_STATUSES)))
        if {row.lookup for row in live} & set(lookups):
            raise InvalidInput("この連絡先はすでに登録されています")
        free = sorted(set(range(1, MAX_PER_KIND[kind] + 1)) - {row.position for row in live})
        if len(free) < len(values):
            raise LimitReached(f"登録できるのは{MAX_PER_KIND[kind]}件までです")
        now = app.clock.now()
        rows = [ContactPoint(guardian=guardian_id, kind=kind, position=position,
                             sealed=app.sealer.seal(guardian_id, kind, value), lookup=lookup,
                             label=label, status=status, created_at=now,
                             confirmed_at=now if status == "active" else None)
                for position, value, lookup in zip(free, normalised, lookups)]
        ContactPoint.bulk_create(rows)
    return rows


def add_contact(app, guardian_id: str, kind: str, value: str, *, status: str = "pending",
                label: str = "") -> ContactPoint:
    """Add one contact point to a guardian (see add_contacts)."""
    return add_contacts(app, guardian_id, kind, [value], status=status, label=label)[0]


def find_holders(app, kind: str, values: list[str]) -> dict[str, set[str]]:
    """Return value -> ids of guardians holding it live, for many values in a few queries."""
    lookups = {app.sealer.lookup(kind, normalise(kind, value)): value for value in values}
    holders: dict[str, set[str]] = {value: set() for value in values}
    for batch in peewee.chunked(list(lookups), 500):
        rows = (ContactPoint.select(ContactPoint.lookup, ContactPoint.guardian)
                .where((ContactPoint.kind == kind) & ContactPoint.lookup.in_(batch)
                       & ContactPoint.status.in_(LIVE_STATUSES)).tuples())
        for lookup, guardian_id in rows:
            holders[lookups[lookup]].add(guardian_id)
    return holders


def suspend(contact_ids: list[str]) -> None:
    """Stop delivering to these active contact points (they keep their slot; the school sees the count)."""
    if contact_ids:
        with db.write():
            (ContactPoint.update(status="suspended")
             .where(ContactPoint.id.in_(contact_ids) & (ContactPoint.status == "active")).execute())


@dataclass(frozen=True)
class ContactSummary:
    """What school roles may know about a guardian's contact points: counts, never values."""

    counts: dict[str, int]       # live contact points by kind
    suspended: dict[str, int]    # of those, suspended (bouncing) by kind


def summarise_contacts(guardian_ids: list[str]) -> dict[str, ContactSummary]:
    """Return counts and states per guardian in one query."""
    counts: dict[str, Counter] = defaultdict(Counter)
    suspended: dict[str, Counter] = defaultdict(Counter)
    rows = (ContactPoint.select(ContactPoint.guardian, ContactPoint.kind, ContactPoint.status)
            .where(ContactPoint.guardian.in_(guardian_ids) & ContactPoint.status.in_(LIVE_STATUSES))
            .tuples())
    for guardian_id, kind, status in rows:
        counts[guardian_id][kind] += 1
        if status == "suspended":
            suspended[guardian_id][kind] += 1
    return {g: ContactSummary(dict(counts[g]), dict(suspended[g])) for g in guardian_ids}


_REACHABLE_IN_SCHOOL = (
    "SELECT DISTINCT cp.guardian_id FROM contact_point cp"
    " JOIN guardian_link l ON l.guardian_id = cp.guardian_id AND l.status = 'approved'"
    " JOIN student s ON s.id = l.student_id AND s.status = 'enrolled'"
    " WHERE s.school_id = {p} AND cp.status = 'active'")


def reachable_in_school(school_id: str) -> set[str]:
    """Return the ids of the school's approved guardians with a working channel (no contact data)."""
    # One statement for a whole school: CoCo-net's dashboard asks it on every refresh in a disaster.
    return {gid for (gid,) in db.fetch(_REACHABLE_IN_SCHOOL, (school_id,))}


@dataclass(frozen=True)
class RevealedContact:
    id: str
    kind: str
    position: int
    value: str
    label: str
    status: str


def reveal_contacts(app, guardian_id: str, actor: str) -> list[RevealedContact]:
    """Return a guardian's contact values for the operator, writing the view to the audit log."""
    rows = list(ContactPoint.select().where(
        (ContactPoint.guardian == guardian_id) & ContactPoint.status.in_(LIVE_STATUSES))
        .order_by(ContactPoint.kind, ContactPoint.position))
    audit.record(app, actor, "contacts.view", subject_id=guardian_id)
    return [RevealedContact(r.id, r.kind, r.position, app.sealer.open(guardian_id, r.kind, r.sealed),
                            r.label, r.status) for r in rows]


def open_for_delivery(app, contact_ids: list[str]) -> dict[str, str]:
    """Return contact id -> value for the delivery workers (never for display)."""
    rows = db.plain_rows(ContactPoint.select(ContactPoint.id, ContactPoint.guardian, ContactPoint.kind,
                                             ContactPoint.sealed).where(ContactPoint.id.in_(contact_ids)))
    return {cid: app.sealer.open(gid, kind, sealed) for cid, gid, kind, sealed in rows}


def add_contacts_bulk(app, rows: list[tuple[str, str, str]], *, status: str = "pending") -> int:
    """Add (guardian id, kind, value) rows in one statement, for guardians that have no contact points yet.

    Made for seeds and imports of new guardians: positions are numbered from 1 in the
    order given, without reading the table, so a guardian who already has contact
    points must go through add_contacts instead. Returns how many rows were added.
    """
    now = app.clock.now()
    confirmed_at = now if status == "active" else None
    taken: Counter = Counter()
    seen: set[tuple[str, str, str]] = set()
    records = []
    for guardian_id, kind, value in rows:
        value = normalise(kind, value)
        lookup = app.sealer.lookup(kind, value)
        if (guardian_id, kind, lookup) in seen:
            raise InvalidInput("同じ連絡先が二度指定されています")
        seen.add((guardian_id, kind, lookup))
        taken[guardian_id, kind] += 1
        if taken[guardian_id, kind] > MAX_PER_KIND[kind]:
            raise LimitReached(f"登録できるのは{MAX_PER_KIND[kind]}件までです")
        records.append((ContactPoint.id.default(), guardian_id, kind, taken[guardian_id, kind],
                        app.sealer.seal(guardian_id, kind, value), lookup, "", status, now, confirmed_at))
    with db.write():
        db.insert_rows(ContactPoint, [ContactPoint.id, ContactPoint.guardian, ContactPoint.kind,
                                      ContactPoint.position, ContactPoint.sealed, ContactPoint.lookup,
                                      ContactPoint.label, ContactPoint.status, ContactPoint.created_at,
                                      ContactPoint.confirmed_at], records)
    return len(records)


# --- the guardian's own contact points (their portal) ------------------------------------------

def own_contacts(app, guardian_id: str, kind: str) -> list[RevealedContact]:
    """Return a guardian's own live contact points of a kind, values opened, for their own eyes only."""
    rows = (ContactPoint.select().where((ContactPoint.guardian == guardian_id) & (ContactPoint.kind == kind)
                                        & ContactPoint.status.in_(LIVE_STATUSES)).order_by(ContactPoint.position))
    return [RevealedContact(r.id, r.kind, r.position, app.sealer.open(guardian_id, r.kind, r.sealed), r.label,
                            r.status) for r in rows]


def get_own_contact(guardian_id: str, contact_id: str, kind: str) -> ContactPoint:
    """Return one of the guardian's live contact points of a kind, or raise NotFound (another's is not found)."""
    row = ContactPoint.get_or_none((ContactPoint.id == contact_id) & (ContactPoint.guardian == guardian_id)
                                   & (ContactPoint.kind == kind) & ContactPoint.status.in_(LIVE_STATUSES))
    if row is None:
        raise NotFound("連絡先が見つかりません")
    return row


def find_contact_points(app, kind: str, value: str, statuses: tuple[str, ...] = ("active",)) -> list[ContactPoint]:
    """Return the contact points holding a value (every guardian's), found by its lookup hash."""
    lookup = app.sealer.lookup(kind, normalise(kind, value))
    return list(ContactPoint.select().where((ContactPoint.kind == kind) & (ContactPoint.lookup == lookup)
                                            & ContactPoint.status.in_(statuses)))


def confirm_contact(app, contact_id: str) -> bool:
    """Make a pending or suspended contact point active (its owner proved it works); False if it is gone."""
    now = app.clock.now()
    with db.write():
        return (ContactPoint.update(status="active", confirmed_at=now)
                .where((ContactPoint.id == contact_id) & ContactPoint.status.in_(("pending", "suspended")))
                .execute()) > 0 or ContactPoint.select().where(
                    (ContactPoint.id == contact_id) & (ContactPoint.status == "active")).exists()


def active_twin(contact_id: str) -> ContactPoint | None:
    """Return another guardian's active contact point holding the same value as this one (oldest first), if any."""
    point = ContactPoint.get_by_id(contact_id)
    return (ContactPoint.select().where((ContactPoint.kind == point.kind) & (ContactPoint.lookup == point.lookup)
                                        & (ContactPoint.guardian != point.guardian_id)
                                        & (ContactPoint.status == "active"))
            .order_by(ContactPoint.created_at, ContactPoint.id).first())


def remove_contact(app, guardian_id: str, contact_id: str) -> None:
    """Remove one of the guardian's contact points; its slot is free again, its past deliveries stay."""
    with db.write():
        (ContactPoint.update(status="removed")
         .where((ContactPoint.id == contact_id) & (ContactPoint.guardian == guardian_id)).execute())


def count_live(guardian_id: str, kind: str, statuses: tuple[str, ...] = LIVE_STATUSES) -> int:
    """Return how many contact points of a kind the guardian has in these states."""
    return (ContactPoint.select().where((ContactPoint.guardian == guardian_id) & (ContactPoint.kind == kind)
                                        & ContactPoint.status.in_(statuses)).count())
