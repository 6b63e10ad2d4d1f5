"""Capability tokens: issued in bulk, derived (not stored), resolved by hash, scoped, expiring."""
import re
import stat
from datetime import timedelta

import pytest

from appliance import db, tokens
from appliance.models import CapabilityToken, Guardian, Message
from appliance.schools import add_school


@pytest.fixture
def grants(app):
    """Three guardians and one message to issue tokens for."""
    school = add_school(app, "s1", "さくら小学校")
    now = app.clock.now()
    with db.write():
        guardians = [Guardian.create(name=f"保護者{i}", created_at=now) for i in range(3)]
        message = Message.create(school=school, subject="お知らせ", body="本文", audience="all",
                                 send_at=now, created_at=now)
    return [(g.id, message.id) for g in guardians]


def test_bulk_issue_resolves_each_token_to_its_guardian_and_message(app, grants):
    issued = tokens.issue_tokens(app, "read", grants)
    assert set(issued) == set(grants)
    assert len(set(issued.values())) == 3
    for (guardian_id, message_id), token in issued.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", token)       # 128 bits, URL-safe
        assert tokens.resolve_token(app, token, "read") == tokens.TokenGrant(guardian_id, message_id)
    assert CapabilityToken.select().count() == 3


def test_the_same_grant_always_gets_the_same_token_and_no_new_row(app, grants, clock):
    first = tokens.issue_tokens(app, "read", grants)
    clock.advance(hours=1)        # a re-render after a crash, later
    assert tokens.issue_tokens(app, "read", grants) == first
    assert CapabilityToken.select().count() == 3


def test_a_token_works_only_for_its_scope(app, grants):
    read = tokens.issue_tokens(app, "read", grants[:1])[grants[0]]
    unsubscribe = tokens.issue_tokens(app, "unsubscribe", grants[:1])[grants[0]]
    assert read != unsubscribe
    with pytest.raises(tokens.InvalidToken) as wrong:
        tokens.resolve_token(app, read, "unsubscribe")
    assert wrong.value.reason == "scope"
    assert tokens.resolve_token(app, unsubscribe, "unsubscribe").guardian_id == grants[0][0]


def test_a_token_expires(app, grants, clock):
    token = tokens.issue_tokens(app, "read", grants[:1])[grants[0]]
    clock.advance(days=89)
    tokens.resolve_token(app, token, "read")
    clock.advance(days=1)
    with pytest.raises(tokens.InvalidToken) as expired:
        tokens.resolve_token(app, token, "read")
    assert expired.value.reason == "expired"


def test_issuing_again_does_not_extend_the_expiry(app, grants, clock):
    token = tokens.issue_tokens(app, "read", grants[:1])[grants[0]]
    clock.advance(days=60)
    tokens.issue_tokens(app, "read", grants[:1])
    clock.advance(days=31)
    with pytest.raises(tokens.InvalidToken):
        tokens.resolve_token(app, token, "read")


def test_an_explicit_expiry_is_kept(app, grants, clock):
    token = tokens.issue_tokens(app, "read", grants[:1], expires_at=clock.now() + timedelta(hours=2))[grants[0]]
    clock.advance(hours=1)
    tokens.resolve_token(app, token, "read")
    clock.advance(hours=1)
    with pytest.raises(tokens.InvalidToken):
        tokens.resolve_token(app, token, "read")


@pytest.mark.parametrize("token", ["", "A" * 22, "A" * 65, "ああああ", "../../etc/passwd"])
def test_unknown_tokens_are_refused_with_the_same_message(app, grants, token):
    tokens.issue_tokens(app, "read", grants)
    with pytest.raises(tokens.InvalidToken) as unknown:
        tokens.resolve_token(app, token, "read")
    assert unknown.value.reason == "unknown"
    assert str(unknown.value) == str(tokens.InvalidToken("expired")) == str(tokens.InvalidToken("scope"))


def test_only_hashes_are_stored(app, grants):
    issued = tokens.issue_tokens(app, "read", grants)
    rows = [str(value) for row in CapabilityToken.select().tuples() for value in row]
    db.database.execute_sql("PRAGMA wal_checkpoint(FULL)")
    files = b"".join(path.read_bytes() for path in app.data_dir.glob("appliance.db*"))
    for token in issued.values():
        assert not any(token in value for value in rows)
        assert token.encode() not in files


def test_a_token_for_a_guardian_alone(app, grants):
    guardian_id = grants[0][0]
    token = tokens.issue_tokens(app, "unsubscribe", [(guardian_id, None)])[(guardian_id, None)]
    assert tokens.resolve_token(app, token, "unsubscribe") == tokens.TokenGrant(guardian_id, None)


def test_the_key_is_a_private_file_in_the_data_dir(app, grants):
    tokens.issue_tokens(app, "read", grants)
    key = app.config.path("keys", "tokens")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32


def test_unknown_scopes_are_refused(app, grants):
    with pytest.raises(ValueError):
        tokens.issue_tokens(app, "admin", grants)


def test_links_are_built_on_the_base_url(app):
    assert tokens.token_url(app, "read", "abc") == "http://127.0.0.1:8080/r/abc"
    assert tokens.token_url(app, "unsubscribe", "abc") == "http://127.0.0.1:8080/u/abc"
