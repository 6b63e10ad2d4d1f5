"""Bounce parsing (appliance/bounces.py) on real-looking samples, and fuzzing of the MIME and DSN parsers."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import mime
from appliance.bounces import parse_bounce
from appliance.inbound import read_reply
from tests.unit.mail_fixtures import SAMPLES, inbound_mail



@pytest.mark.parametrize("sample, status, recipient", [
    ("postfix.eml", "5.1.1", "rk0000101@example.net"),
    ("gmail.eml", "5.1.1", "rk0000102@gmail.com"),
    ("exchange.eml", "5.1.10", "rk0000103@contoso.co.jp"),
    ("docomo.eml", "5.1.1", "rk0000104@docomo.ne.jp"),     # sendmail-style prose, no DSN part
    ("au.eml", "5.7.1", "rk0000105@au.com"),               # Japanese, ISO-2022-JP: the carrier's filter refused it
    ("softbank.eml", "5.2.2", "rk0000106@i.softbank.jp"),  # Japanese, Shift_JIS in base64: mailbox full
])
def test_failed_deliveries_are_read_from_each_style(sample, status, recipient):
    [report] = parse_bounce((SAMPLES / sample).read_bytes(), "")
    assert (report.action, report.status, report.recipient) == ("failed", status, recipient)
    assert report.failed and report.diagnostic


def test_japanese_reasons_are_kept_readable():
    [au] = parse_bounce((SAMPLES / "au.eml").read_bytes(), "")
    assert "受信拒否" in au.diagnostic
    [softbank] = parse_bounce((SAMPLES / "softbank.eml").read_bytes(), "")
    assert "容量" in softbank.diagnostic


def test_a_delay_notice_is_not_a_failure():
    [report] = parse_bounce((SAMPLES / "postfix-delayed.eml").read_bytes(), "")
    assert (report.action, report.status, report.failed) == ("delayed", "4.4.1", False)


def test_an_auto_reply_or_ordinary_mail_is_not_a_bounce():
    assert parse_bounce((SAMPLES / "vacation.eml").read_bytes(), "someone@example.org") == []
    mail = inbound_mail("school@example.jp", "550 人が参加します。存在しない日付ではありません。", sender="someone@example.org",
                        subject="質問")
    assert parse_bounce(mail, "someone@example.org") == []


_mime_text = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.sampled_from([
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n", b"Content-Type: message/delivery-status\r\n",
        b"Content-Type: text/plain; charset=iso-2022-jp\r\n", b"Content-Type: text/plain; charset=bogus\r\n",
        b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Content-Disposition: attachment; filename*=utf-8''%E3%81%82.pdf\r\n", b"Subject: =?ISO-2022-JP?B?GyRC?=\r\n",
        b"From: MAILER-DAEMON@example.net\r\n", b"\r\n", b"--x\r\n", b"--x--\r\n", b"Action: failed\r\n",
        b"Status: 5.1.1\r\n", b"Final-Recipient: rfc822; a@b.example\r\n", b"Diagnostic-Code: smtp; 550 x\r\n",
        b"\x1b$B\x2d\x21\x1b(B", b"\xff\xfe", b"=?utf-8?q?=E3=81?=", b"%PDF-1.4\r\n", b"PK\x03\x04",
    ]), max_size=40).map(b"".join),
)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mime_text)
def test_parsers_never_fail_on_arbitrary_mail(raw):
    """Fuzz: whatever arrives, the parsers answer with reports or a refusal, never an exception."""
    try:
        message = mime.parse(raw)
    except mime.MailRefused:
        return
    for report in parse_bounce(raw, ""):
        assert report.action
    try:
        body, files = read_reply(message)
    except mime.MailRefused:
        return
    assert isinstance(body, str) and all(isinstance(data, bytes) for _, data in files)
