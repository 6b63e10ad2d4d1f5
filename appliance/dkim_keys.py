"""DKIM key files in the data dir and the public records made from them.

The MTA signs with these keys (``mta.dkim``); the operator publishes their public
halves (``appliance.dns_records``). Reading a key file and naming its DNS record is
core work so the web UI can show the records without importing the MTA.
"""
from __future__ import annotations

import base64
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from appliance.config import Config
from appliance.errors import ApplianceError, InvalidInput

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


class DkimError(ApplianceError):
    """DKIM keys or signing cannot go ahead; the message says what to do."""


class DkimKeyMissing(DkimError):
    """A DKIM key file the configuration asks for is not in the data dir."""


def ed25519_selector(selector: str) -> str:
    """Return the selector the Ed25519 key is published under (RSA and Ed25519 need one each)."""
    return f"{selector}-ed"


def rsa_key_path(config: Config, selector: str) -> Path:
    """Return where the RSA key for a selector lives in the data dir."""
    return config.data_dir / "keys" / f"dkim-{selector}.pem"


def ed25519_key_path(config: Config, selector: str) -> Path:
    """Return where the Ed25519 key for a selector lives in the data dir."""
    return config.data_dir / "keys" / f"dkim-{selector}-ed25519.pem"


def ascii_domain(domain: str) -> str:
    """Return a mail domain in lowercase ASCII (IDNA A-labels for 日本語.jp), or raise InvalidInput."""
    try:
        name = domain.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidInput(f"ドメイン名「{domain}」を読めません") from None
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise InvalidInput(f"ドメイン名「{domain}」は使えません（例: renraku.example.jp）")
    return name


def check_selector(selector: str) -> str:
    """Return a DKIM selector if it is one DNS label (it names a key file too), or raise InvalidInput."""
    # Room for the "-ed" suffix of the Ed25519 selector within the 63-octet label limit.
    if len(selector) > 60 or not _LABEL.match(selector):
        raise InvalidInput(f"セレクタ「{selector}」は使えません: 英小文字・数字・「-」で60文字まで（例: renraku2027）")
    return selector


def read_private_key(path: Path, kind: type, command: str):
    """Return the private key in a key file, or raise DkimKeyMissing / DkimError saying what to do."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise DkimKeyMissing(f"DKIM鍵 {path} がありません: `{command}` で作ってください") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise DkimError(f"DKIM鍵 {path} を秘密鍵として読めません") from None
    if not isinstance(key, kind):
        raise DkimError(f"DKIM鍵 {path} の種類が違います")
    return key


def init_command(domain: str, selector: str, with_ed25519: bool) -> str:
    """Return the command that makes the missing keys, for error messages."""
    return (f"appliance dkim init --domain {domain} --selector {selector}"
            + (" --ed25519" if with_ed25519 else ""))


def public_txt_records(config: Config, domain: str | None = None, selector: str | None = None,
                       with_ed25519: bool | None = None) -> dict[str, str]:
    """Return the DKIM TXT records to publish (name -> value) for the keys in the data dir."""
    domain = ascii_domain(domain or config["mail"]["domain"])
    selector = check_selector(selector or config["mta"]["dkim_selector"])
    with_ed25519 = config["mta"]["dkim_ed25519"] if with_ed25519 is None else with_ed25519
    command = init_command(domain, selector, with_ed25519)
    rsa_public = read_private_key(rsa_key_path(config, selector), rsa.RSAPrivateKey, command).public_key()
    der = rsa_public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    records = {f"{selector}._domainkey.{domain}": f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"}
    if with_ed25519:
        ed_public = read_private_key(ed25519_key_path(config, selector), ed25519.Ed25519PrivateKey, command).public_key()
        raw = ed_public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        records[f"{ed25519_selector(selector)}._domainkey.{domain}"] = (
            f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}")
    return records
