"""Inbound mail builders shared by the unit and integration tests of appliance/inbound.py: a fake DNS, a router
over it, a guardian's mail, a sample bounce aimed at a delivery, a DKIM-signed mail."""
import base64
from email.message import EmailMessage
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from appliance.inbound import Router
from appliance.mail_auth import DnsFailure

SAMPLES = Path(__file__).parent / "samples" / "bounces"
DOMAIN = "renraku.example"      # the default [mail] domain: reply, bounce and entry addresses live there


class FakeDns:
    """The router's DNS look-up (appliance.mail_auth's contract) from a dict; names in `failing` time out."""

    def __init__(self, records: dict | None = None, failing: tuple[str, ...] = ()):
        self.records, self.failing, self.asked = records or {}, failing, []

    def __call__(self, name: str, rdtype: str) -> list:
        self.asked.append((name, rdtype))
        if name in self.failing:
            raise DnsFailure(f"{rdtype} {name}: Timeout")
        return list(self.records.get((name, rdtype), []))


def make_router(app, dns=None, **kwargs) -> Router:
    """The inbound router over a fake DNS (empty unless given)."""
    return Router(app, dns=dns or FakeDns(), **kwargs)


def inbound_mail(to: str, body: str | None = "参加します。", *, sender: str = "taro@example.jp",
                 subject: str = "Re: 遠足のお知らせ", files=(), headers=None) -> bytes:
    """A mail as a mailer sends it (CRLF line ends); files are (name, data, maintype, subtype).

    ``body=None``: headers only, no MIME part at all (an empty mail as phones send it).
    """
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    for name, value in (headers or {}).items():
        mail[name] = value
    if body is not None:
        mail.set_content(body)
    for name, data, maintype, subtype in files:
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail.as_bytes(policy=mail.policy.clone(linesep="\r\n"))


def bounce_to(delivery_id: str, sample: str) -> bytes:
    """A sample bounce (samples/bounces/) rewritten to answer this delivery's VERP address."""
    raw = (SAMPLES / sample).read_bytes()
    return raw.replace(b"b-0190f3a2-7c4e-7d10-9a6b-3c2f1e0d9b8a", f"b-{delivery_id}".encode())


def dkim_signed(raw: bytes, domain: bytes) -> tuple[bytes, bytes]:
    """The mail signed for the domain with selector s1 by a fresh key, and that key's TXT record."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return (dkim.sign(raw, b"s1", domain, pem, include_headers=[b"from", b"subject"]) + raw,
            b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))
