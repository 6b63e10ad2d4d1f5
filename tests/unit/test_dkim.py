"""DKIM signing: relaxed canonicalization, signatures dkimpy accepts, key files and `appliance dkim init`.

dkimpy checks Ed25519 signatures through PyNaCl, which the test extras do not install; where
it is missing, `nacl_for_dkimpy` hands dkimpy a stand-in backed by `cryptography`, so dkimpy
still does the parsing, canonicalization and hashing and only the final Ed25519 check is ours.
"""
import base64
import importlib.util
import json
import re
import stat
import types
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage

import dkim as dkimpy
import pytest
from click.testing import CliRunner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import Relaxed

from appliance.cli.common import CliState
from appliance.clock import FrozenClock
from appliance.config import load_config
from appliance.dkim_keys import DkimError, DkimKeyMissing, ed25519_key_path, public_txt_records, rsa_key_path
from appliance.errors import InvalidInput
from mta.cli import dkim
from mta.dkim import (
    DkimKeyExists,
    DkimSigner,
    UnsignableMessage,
    canonicalize_body,
    canonicalize_header,
    crlf,
    load_signer,
    make_keys,
)

SIGNED_AT = datetime(2025, 4, 7, 0, 0, tzinfo=timezone.utc)   # in the past: dkimpy rejects t= in the future


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed_key():
    return ed25519.Ed25519PrivateKey.generate()


def _txt(key) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


class _BadSignature(Exception):
    pass


class _VerifyKey:
    """PyNaCl's VerifyKey, as far as dkimpy uses it, over cryptography's Ed25519."""

    def __init__(self, key, encoder=None):
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(key))

    def verify(self, message, signature):
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            raise _BadSignature from None
        return message


@pytest.fixture
def nacl_for_dkimpy(monkeypatch):
    """Let dkimpy verify Ed25519 signatures even where PyNaCl is not installed."""
    if importlib.util.find_spec("nacl") is None:
        monkeypatch.setattr(dkimpy, "nacl", types.SimpleNamespace(
            signing=types.SimpleNamespace(VerifyKey=_VerifyKey), encoding=types.SimpleNamespace(Base64Encoder=None),
            exceptions=types.SimpleNamespace(BadSignatureError=_BadSignature, ValueError=ValueError)), raising=False)


@pytest.fixture
def signer(rsa_key):
    return DkimSigner("renraku.example", "renraku", rsa_key, clock=FrozenClock(SIGNED_AT))


@pytest.fixture
def dual_signer(rsa_key, ed_key):
    return DkimSigner("renraku.example", "renraku", rsa_key, ed_key, clock=FrozenClock(SIGNED_AT))


@pytest.fixture
def dns(rsa_key, ed_key):
    """A dnsfunc for dkimpy that answers with the test keys' TXT records."""
    answers = {b"renraku._domainkey.renraku.example.": _txt(rsa_key),
               b"renraku-ed._domainkey.renraku.example.": _txt(ed_key)}
    return lambda name, timeout=5: answers.get(name)


def japanese_mail(body="保護者の皆様\n\n明日は大雪のため臨時休校とします。\n", linesep="\r\n") -> bytes:
    """A notice as the renderer makes it: MIME-encoded Japanese subject folded over lines."""
    mail = EmailMessage(policy=policy.SMTP.clone(linesep=linesep))
    mail["From"] = "第一小学校 連絡網 <noreply@renraku.example>"
    mail["To"] = "hogosha@example.jp"
    mail["Subject"] = "【緊急】臨時休校のお知らせ（大雪のため、明日一月十日は全校で臨時休校とします）"
    mail["Date"] = "Sat, 10 Jan 2026 07:00:00 +0900"
    mail["Message-ID"] = "<0192f0a1-7c3e-7def-8000-000000000001@renraku.example>"
    mail["List-Unsubscribe"] = "<https://renraku.example/u/abc>"
    mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(body)
    return mail.as_bytes()


def verify(message: bytes, dns, index: int = 0) -> bool:
    try:
        return dkimpy.DKIM(message).verify(idx=index, dnsfunc=dns)
    except dkimpy.ValidationError:   # dkimpy raises on a body hash mismatch instead of answering False
        return False


def tags(message: bytes, index: int = 0) -> dict[str, str]:
    """The tags of the index-th DKIM-Signature, unfolded."""
    headers = re.findall(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", message, re.M | re.S)
    unfolded = re.sub(r"\s+", "", headers[index].decode())
    return dict(tag.split("=", 1) for tag in unfolded.split(";") if tag)


# --- canonicalization (RFC 6376 §3.4.5) -------------------------------------------------------

def test_rfc_6376_example_headers_in_relaxed_form():
    assert canonicalize_header(b"A", b" X") == b"a:X\r\n"
    assert canonicalize_header(b"B ", b" Y\t\r\n\tZ  ") == b"b:Y Z\r\n"


def test_rfc_6376_example_body_in_relaxed_form():
    assert canonicalize_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"


@pytest.mark.parametrize("body", [
    b"", b"\r\n", b"\r\n\r\n", b"abc", b"a\r\n \r\n\t\r\n", b"  lead\r\n", b"x\r\n\r\ny \r\n\r\n",
    b"\t\ttabs\t and  spaces \r\n", b"last line \t\r\n \r\n",
])
def test_body_canonicalization_agrees_with_dkimpy(body):
    assert canonicalize_body(body) == Relaxed.canonicalize_body(body)


def test_whitespace_ending_a_body_without_crlf_is_not_left_to_the_verifier(signer, dns):
    """RFC 6376 leaves open whether such WSP ends a line (dkimpy keeps it): the signer adds the CRLF first."""
    assert canonicalize_body(b"abc \t") == b"abc\r\n"
    signed = signer.sign(b"From: a@renraku.example\r\n\r\nabc \t")
    assert signed.endswith(b"\r\n\r\nabc \t\r\n")
    assert verify(signed, dns)


def test_header_canonicalization_agrees_with_dkimpy():
    name, value = b"Subject ", b" =?UTF-8?B?44CQ?=\r\n\t =?UTF-8?B?57eK?=  \t"
    ((dk_name, dk_value),) = Relaxed.canonicalize_headers([(name, value)])
    assert canonicalize_header(name, value) == dk_name + b":" + dk_value


def test_lf_line_endings_become_crlf():
    assert crlf(b"A: 1\nB: 2\r\n\nbody\n") == b"A: 1\r\nB: 2\r\n\r\nbody\r\n"
    assert crlf(b"A: 1\r\n\r\nx\r\n") == b"A: 1\r\n\r\nx\r\n"


# --- signatures dkimpy accepts --------------------------------------------------------------------

def test_rsa_signature_verifies_with_dkimpy(signer, dns):
    signed = signer.sign(japanese_mail())
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n\td=renraku.example; s=renraku; t=")
    assert signed.endswith(japanese_mail())
    assert verify(signed, dns)
    assert dkimpy.verify(signed, dnsfunc=dns)


def test_signature_lines_stay_short(signer):
    header = signer.sign(japanese_mail()).split(b"\r\nFrom:")[0]
    assert max(len(line) for line in header.split(b"\r\n")) <= 78


def test_signed_headers_are_the_present_ones_with_from_signed_twice(signer):
    signature = tags(signer.sign(japanese_mail()))
    assert signature["h"].split(":") == ["from", "to", "subject", "date", "message-id", "mime-version", "content-type",
                                         "content-transfer-encoding", "list-unsubscribe", "list-unsubscribe-post",
                                         "auto-submitted", "from"]


def test_signing_time_comes_from_the_clock_and_no_expiry_by_default(signer):
    signature = tags(signer.sign(japanese_mail()))
    assert int(signature["t"]) == int(SIGNED_AT.timestamp())
    assert "x" not in signature


def test_expiry_when_asked(rsa_key, dns):
    signer = DkimSigner("renraku.example", "renraku", rsa_key, expire_after=timedelta(days=7))
    signed = signer.sign(japanese_mail())
    signature = tags(signed)
    assert int(signature["x"]) - int(signature["t"]) == 7 * 86400
    assert verify(signed, dns)


def test_ed25519_signature_beside_rsa_verifies_with_dkimpy(dual_signer, dns, nacl_for_dkimpy):
    signed = dual_signer.sign(japanese_mail())
    assert [tags(signed, i)["a"] for i in (0, 1)] == ["rsa-sha256", "ed25519-sha256"]
    assert tags(signed, 1)["s"] == "renraku-ed"
    assert verify(signed, dns, 0)
    assert verify(signed, dns, 1)


def test_ed25519_check_fails_on_a_tampered_mail(dual_signer, dns, nacl_for_dkimpy):
    """The stand-in for PyNaCl must be able to say no, or the test above proves nothing."""
    signed = dual_signer.sign(japanese_mail()).replace(b"hogosha@example.jp", b"other@example.jp")
    assert not verify(signed, dns, 1)


def test_lf_message_is_signed_as_crlf(signer, dns):
    lf_mail = japanese_mail(linesep="\n")
    assert b"\r\n" not in lf_mail
    signed = signer.sign(lf_mail)
    assert signed == signer.sign(japanese_mail())
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert verify(signed, dns)


def test_body_with_trailing_blank_lines_and_spaces(signer, dns):
    mail = japanese_mail(body="本文です。  \n\t行末に空白  \n\n\n\n")
    signed = signer.sign(mail)
    assert verify(signed, dns)
    # Trailing empty lines are not covered (relaxed body): a relay that drops them changes nothing.
    assert verify(signed.rstrip(b"\r\n") + b"\r\n", dns)


def test_folded_headers_and_extra_whitespace(signer, dns):
    mail = (b"From:  =?UTF-8?B?6YCj57Wh57ay?=\r\n  <noreply@renraku.example>\r\n"
            b"To: a@example.jp,\r\n\tb@example.jp\r\n"
            b"Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\r\n =?UTF-8?B?44CQ57eK5oCl44CR?=\r\n"
            b"Received: from somewhere\r\n"
            b"\r\nbody\r\n")
    signed = signer.sign(mail)
    assert "received" not in tags(signed)["h"]
    assert verify(signed, dns)
    # Refolding a signed header in transit is what relaxed canonicalization forgives.
    assert verify(signed.replace(b"To: a@example.jp,\r\n\tb@example.jp", b"To: a@example.jp,  b@example.jp"), dns)


def test_empty_body_and_no_blank_line(signer, dns):
    assert verify(signer.sign(b"From: a@renraku.example\r\nSubject: x\r\n"), dns)
    assert verify(signer.sign(b"From: a@renraku.example\r\n\r\n"), dns)


@pytest.mark.parametrize("old, new", [
    (b"Subject: =?utf-8?b?44CQ", b"Subject: =?utf-8?b?44CR"),       # a signed header
    (b"hogosha@example.jp", b"other@example.jp"),
    (b"Auto-Submitted: auto-generated", b"Auto-Submitted: no"),
])
def test_tampering_with_a_signed_header_fails(signer, dns, old, new):
    signed = signer.sign(japanese_mail())
    assert old in signed
    assert not verify(signed.replace(old, new, 1), dns)


def test_tampering_with_the_body_fails(signer, dns):
    signed = signer.sign(japanese_mail())
    assert not verify(signed.replace(b"\r\n\r\n", b"\r\n\r\nX", 1), dns)
    assert not verify(signed + b"PS\r\n", dns)


def test_an_added_from_header_fails(signer, dns):
    signed = signer.sign(japanese_mail())
    head, _, rest = signed.partition(b"From:")
    assert not verify(head + b"From: attacker@evil.example\r\nFrom:" + rest, dns)


def test_a_mail_without_from_cannot_be_signed(signer):
    with pytest.raises(UnsignableMessage, match="From"):
        signer.sign(b"To: a@example.jp\r\nSubject: x\r\n\r\nbody\r\n")


def test_a_header_line_without_colon_cannot_be_signed(signer):
    with pytest.raises(UnsignableMessage):
        signer.sign(b"From: a@renraku.example\r\nnonsense\r\n\r\nbody\r\n")


def test_weak_or_wrong_keys_are_refused(ed_key):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(DkimError):
        DkimSigner("renraku.example", "renraku", small)
    with pytest.raises(DkimError):
        DkimSigner("renraku.example", "renraku", ed_key)


def test_bad_domain_or_selector_is_invalid_input(rsa_key):
    with pytest.raises(InvalidInput):
        DkimSigner("not a domain", "renraku", rsa_key)
    with pytest.raises(InvalidInput):
        DkimSigner("renraku.example", "../keys", rsa_key)


def test_japanese_domain_is_signed_as_its_a_label(rsa_key):
    signer = DkimSigner("連絡網.jp", "renraku", rsa_key)
    assert tags(signer.sign(b"From: a@xn--od0amgn83c.jp\r\n\r\nx\r\n"))["d"] == "xn--od0amgn83c.jp"


# --- key files ------------------------------------------------------------------------------------

def config_for(tmp_path, **mta):
    return load_config(tmp_path / "data", environ={}, overrides={"mail": {"domain": "renraku.example"}, "mta": mta})


def test_missing_key_names_the_command_to_run(tmp_path):
    with pytest.raises(DkimKeyMissing, match=r"appliance dkim init --domain renraku\.example --selector renraku"):
        load_signer(config_for(tmp_path))


def test_missing_ed25519_key_is_reported_when_it_is_switched_on(tmp_path):
    config = config_for(tmp_path)
    make_keys(config, "renraku.example", "renraku")
    with pytest.raises(DkimKeyMissing, match="--ed25519"):
        load_signer(config_for(tmp_path, dkim_ed25519=True))


def test_make_keys_writes_0600_files_and_returns_the_txt_records(tmp_path, dns, nacl_for_dkimpy):
    config = config_for(tmp_path, dkim_ed25519=True)
    records = make_keys(config, "renraku.example", "renraku")
    for path in (rsa_key_path(config, "renraku"), ed25519_key_path(config, "renraku")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(records) == ["renraku._domainkey.renraku.example", "renraku-ed._domainkey.renraku.example"]
    assert records["renraku._domainkey.renraku.example"].startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    assert records == public_txt_records(config)
    # The signer load_signer builds from those files verifies against those records.
    answers = {f"{name}.".encode(): value.encode() for name, value in records.items()}
    signed = load_signer(config, clock=FrozenClock(SIGNED_AT)).sign(japanese_mail())
    assert verify(signed, lambda name, timeout=5: answers.get(name), 0)
    assert verify(signed, lambda name, timeout=5: answers.get(name), 1)


def test_make_keys_refuses_to_overwrite_unless_forced(tmp_path):
    config = config_for(tmp_path)
    first = make_keys(config, "renraku.example", "renraku")
    with pytest.raises(DkimKeyExists, match="--force"):
        make_keys(config, "renraku.example", "renraku")
    assert public_txt_records(config) == first
    assert make_keys(config, "renraku.example", "renraku", force=True) != first
    assert stat.S_IMODE(rsa_key_path(config, "renraku").stat().st_mode) == 0o600
    assert sorted(p.name for p in rsa_key_path(config, "renraku").parent.iterdir()) == ["dkim-renraku.pem"]


def test_a_damaged_key_file_is_a_clear_error(tmp_path):
    config = config_for(tmp_path)
    path = rsa_key_path(config, "renraku")
    path.parent.mkdir(parents=True)
    path.write_text("not a key")
    with pytest.raises(DkimError, match="秘密鍵として読めません"):
        load_signer(config)


# --- appliance dkim init --------------------------------------------------------------------------

@pytest.fixture
def dkim_cli(app):
    def invoke(*args):
        return CliRunner().invoke(dkim, list(args), obj=CliState(str(app.data_dir)))
    return invoke


def test_dkim_init_makes_the_key_and_prints_the_zone_lines(app, dkim_cli):
    result = dkim_cli("init", "--domain", "renraku.example")
    assert result.exit_code == 0, result.output
    assert "DKIM鍵を作りました" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "; DKIM 公開鍵（rsa-sha256）"
    assert lines[1].startswith('renraku._domainkey.renraku.example.\t3600\tIN\tTXT\t"v=DKIM1; k=rsa; p=')
    assert stat.S_IMODE(rsa_key_path(app.config, "renraku").stat().st_mode) == 0o600


def test_dkim_init_refuses_to_overwrite_without_force(dkim_cli):
    assert dkim_cli("init").exit_code == 0
    result = dkim_cli("init")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("エラー: DKIM鍵 ") and "--force" in result.stderr
    assert dkim_cli("init", "--force").exit_code == 0


def test_dkim_init_json_with_ed25519(dkim_cli):
    result = dkim_cli("init", "--ed25519", "--selector", "renraku2027", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["name"] for r in records] == ["renraku2027._domainkey.renraku.example",
                                            "renraku2027-ed._domainkey.renraku.example"]
    assert records[1]["value"].startswith("v=DKIM1; k=ed25519; p=")
    assert '注意: 署名には [mta] dkim_selector = "renraku"' in result.stderr
    assert "[mta] dkim_ed25519 = false" in result.stderr


def test_dkim_init_warns_when_the_domain_is_not_the_configured_one(dkim_cli):
    result = dkim_cli("init", "--domain", "school.example.jp")
    assert result.exit_code == 0
    assert '注意: 署名には [mail] domain = "renraku.example" が使われます' in result.stderr
    assert "renraku._domainkey.school.example.jp." in result.stdout


def test_dkim_init_bad_selector_is_one_japanese_line(dkim_cli):
    result = dkim_cli("init", "--selector", "Bad_Selector")
    assert result.exit_code == 1
    assert result.stderr.startswith("エラー: セレクタ「Bad_Selector」は使えません")
