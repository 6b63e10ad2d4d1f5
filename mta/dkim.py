"""DKIM signing (RFC 6376, Ed25519 per RFC 8463), relaxed/relaxed, through `cryptography`.

Every outbound mail is signed here, ~40,000 per blast. dkimpy's RSA is pure Python
(~180 signatures/s on the reference box against ~4,600/s through OpenSSL), so the
signer is ours and dkimpy only verifies it in the tests. Keys live in the data dir as
``keys/dkim-<selector>.pem`` (and ``keys/dkim-<selector>-ed25519.pem``, published under
the selector ``<selector>-ed``), mode 0600, made by ``appliance dkim init``.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from appliance.clock import SystemClock
from appliance.config import Config
from appliance.dkim_keys import (
    DkimError,
    ascii_domain,
    check_selector,
    ed25519_key_path,
    ed25519_selector,
    init_command,
    public_txt_records,
    read_private_key,
    rsa_key_path,
)

# Signed when present, in this order; From must be there. List-*, Auto-Submitted and
# Reply-To are signed because receivers and guardians act on them.
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
                  b"content-transfer-encoding", b"list-id", b"list-unsubscribe", b"list-unsubscribe-post",
                  b"auto-submitted", b"reply-to")
RSA_BITS = 2048

_SIGNED = frozenset(SIGNED_HEADERS)
_FIELD_START = re.compile(rb"\r\n(?![ \t])")     # a line not starting with WSP starts a new field
_LINE = 72                                          # keeps DKIM-Signature lines under 78 octets


class DkimKeyExists(DkimError):
    """A DKIM key would be overwritten without --force."""


class UnsignableMessage(DkimError):
    """The message cannot be signed (no From header, or a header line without a colon)."""


def _compress_wsp(text: bytes) -> bytes:
    # bytes.replace runs in C: a few passes over a 3 KB body cost a tenth of one regex pass.
    text = text.replace(b"\t", b" ")
    while b"  " in text:
        text = text.replace(b"  ", b" ")
    return text


def canonicalize_header(name: bytes, value: bytes) -> bytes:
    """Return one header field in relaxed form (RFC 6376 §3.4.2), ending in CRLF."""
    value = _compress_wsp(value.replace(b"\r\n", b"")).strip(b" ")
    return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"


def canonicalize_body(body: bytes) -> bytes:
    """Return a CRLF body in relaxed form (RFC 6376 §3.4.4): WSP runs to one SP, trailing WSP and empty lines gone."""
    body = _compress_wsp(body).replace(b" \r\n", b"\r\n")
    end = len(body) - 1 if body.endswith(b" ") else len(body)   # a last line without CRLF
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    return body[:end] + b"\r\n" if end else b""


def crlf(message: bytes) -> bytes:
    """Return the message with every line ending as CRLF (renderers and tests may hand over LF)."""
    if message.count(b"\n") == message.count(b"\r\n"):
        return message
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _split_message(message: bytes) -> tuple[bytes, bytes]:
    if message.startswith(b"\r\n"):
        return b"", message[2:]
    cut = message.find(b"\r\n\r\n")
    if cut < 0:
        return message.removesuffix(b"\r\n"), b""
    return message[:cut], message[cut + 4:]


def _fold_names(names: list[bytes]) -> bytes:
    lines, line = [], b""
    for name in names:
        if line and len(line) + len(name) > _LINE - 8:
            lines.append(line + b":")
            line = name
        else:
            line = line + b":" + name if line else name
    lines.append(line)
    return b"\r\n\t".join(lines)


def _fold_b64(signature: bytes) -> bytes:
    text = base64.b64encode(signature)
    return b"\r\n\t ".join(text[i:i + _LINE] for i in range(0, len(text), _LINE))


class DkimSigner:
    """Signs mails for one domain: rsa-sha256, plus ed25519-sha256 when an Ed25519 key is given."""

    def __init__(self, domain: str, selector: str, rsa_key: rsa.RSAPrivateKey,
                 ed25519_key: ed25519.Ed25519PrivateKey | None = None, *, clock: Any = None,
                 expire_after: timedelta | None = None):
        if not isinstance(rsa_key, rsa.RSAPrivateKey) or rsa_key.key_size < RSA_BITS:
            raise DkimError(f"DKIM の RSA 鍵は {RSA_BITS} ビット以上の RSA 秘密鍵が必要です")
        if ed25519_key is not None and not isinstance(ed25519_key, ed25519.Ed25519PrivateKey):
            raise DkimError("DKIM の Ed25519 鍵が Ed25519 秘密鍵ではありません")
        domain, selector = ascii_domain(domain), check_selector(selector)
        self.clock = clock or SystemClock()
        self.expire_after = expire_after
        self._rsa = rsa_key
        self._ed25519 = ed25519_key
        # The tags before t= never change: made once, not 40,000 times a blast.
        self._rsa_prefix = f"v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n\td={domain}; s={selector};".encode()
        self._ed_prefix = (f"v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n\td={domain}; "
                           f"s={ed25519_selector(selector)};").encode()

    def sign(self, message: bytes) -> bytes:
        """Return the message, with CRLF line endings, under its DKIM-Signature header(s)."""
        message = crlf(message)
        header, body = _split_message(message)
        if body and not body.endswith(b"\r\n"):
            # SMTP adds this CRLF anyway; adding it first keeps verifiers from disagreeing on the
            # WSP that ended the last line (RFC 6376 §3.4.4 is read both ways).
            body += b"\r\n"
            message += b"\r\n"
        found: dict[bytes, list[bytes]] = {}
        for field in _FIELD_START.split(header) if header else ():
            name, colon, value = field.partition(b":")
            if not colon:
                raise UnsignableMessage(f"ヘッダーとして読めない行があります: {field[:40]!r}")
            key = name.rstrip(b" \t").lower()
            if key in _SIGNED:
                found.setdefault(key, []).append(canonicalize_header(key, value))
        if b"from" not in found:
            raise UnsignableMessage("From ヘッダーのないメールには署名できません")
        names, signed = [], []
        for key in SIGNED_HEADERS:
            # A verifier takes repeated fields bottom-up (RFC 6376 §5.4.2).
            for canonical in reversed(found.get(key, ())):
                names.append(key)
                signed.append(canonical)
        # One From more than present: a From added in transit then breaks the signature.
        names.append(b"from")
        tags = self._tags(names, body)
        headers = b"".join(signed)
        out = [self._signature(self._rsa_prefix, tags, headers, self._sign_rsa)]
        if self._ed25519 is not None:
            out.append(self._signature(self._ed_prefix, tags, headers, self._sign_ed25519))
        out.append(message)
        return b"".join(out)

    def _tags(self, names: list[bytes], body: bytes) -> bytes:
        signed_at = int(self.clock.now().timestamp())
        times = b"t=%d;" % signed_at
        if self.expire_after is not None:
            times += b" x=%d;" % (signed_at + int(self.expire_after.total_seconds()))
        body_hash = base64.b64encode(hashlib.sha256(canonicalize_body(body)).digest())
        return b" " + times + b"\r\n\th=" + _fold_names(names) + b";\r\n\tbh=" + body_hash + b";\r\n\tb="

    def _signature(self, prefix: bytes, tags: bytes, headers: bytes, sign) -> bytes:
        value = prefix + tags
        # The signature header itself is hashed with b= empty and without its CRLF (§3.7).
        signature = sign(headers + canonicalize_header(b"dkim-signature", value)[:-2])
        return b"DKIM-Signature: " + value + _fold_b64(signature) + b"\r\n"

    def _sign_rsa(self, data: bytes) -> bytes:
        return self._rsa.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def _sign_ed25519(self, data: bytes) -> bytes:
        # RFC 8463: PureEdDSA over the SHA-256 of the header data, not over the data itself.
        return self._ed25519.sign(hashlib.sha256(data).digest())


def load_signer(config: Config, clock: Any = None) -> DkimSigner:
    """Return the signer for [mail] domain and [mta] dkim_selector, with the keys from the data dir."""
    domain = ascii_domain(config["mail"]["domain"])
    selector = check_selector(config["mta"]["dkim_selector"])
    with_ed25519 = config["mta"]["dkim_ed25519"]
    command = init_command(domain, selector, with_ed25519)
    rsa_key = read_private_key(rsa_key_path(config, selector), rsa.RSAPrivateKey, command)
    ed_key = (read_private_key(ed25519_key_path(config, selector), ed25519.Ed25519PrivateKey, command)
              if with_ed25519 else None)
    return DkimSigner(domain, selector, rsa_key, ed_key, clock=clock)


def _write_private_key(path: Path, key) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    # Created 0600 from the start, then renamed: the key is never readable by others, even briefly.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(temporary, path)


def make_keys(config: Config, domain: str, selector: str, *, with_ed25519: bool | None = None,
              force: bool = False) -> dict[str, str]:
    """Create the DKIM key(s) for a selector (mode 0600) and return the TXT records to publish."""
    domain, selector = ascii_domain(domain), check_selector(selector)
    with_ed25519 = config["mta"]["dkim_ed25519"] if with_ed25519 is None else with_ed25519
    paths = [rsa_key_path(config, selector)] + ([ed25519_key_path(config, selector)] if with_ed25519 else [])
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        raise DkimKeyExists(
            f"DKIM鍵 {', '.join(existing)} はもうあります。作り直すには --force を付けてください"
            "（DNS の公開鍵も替える必要があります。鍵を替えるなら新しい --selector が安全です）")
    paths[0].parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private_key(paths[0], rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS))
    if with_ed25519:
        _write_private_key(paths[1], ed25519.Ed25519PrivateKey.generate())
    return public_txt_records(config, domain, selector, with_ed25519)

