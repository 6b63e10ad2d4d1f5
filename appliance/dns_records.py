"""The DNS records an operator must publish so that the appliance's mail is delivered and trusted.

MX for the bounce (inbound) domain, SPF for the mail and bounce domains, DKIM public keys and
DMARC, in zone-file form with a Japanese comment on each. The appliance cannot know its public
address (it usually sits behind NAT), so SPF names it only when given with ``--ip``.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from appliance.config import Config
from appliance.errors import InvalidInput
from appliance.dkim_keys import ascii_domain, public_txt_records

TXT_CHUNK = 255     # one character-string in a TXT record holds at most 255 octets (RFC 1035 §3.3)
TTL = 3600


@dataclass(frozen=True)
class Record:
    """One resource record to publish: owner name (no trailing dot), type, value, and why."""

    name: str
    type: str
    value: str
    note: str

    def zone_line(self, ttl: int = TTL) -> str:
        """Return the record as one zone-file line, TXT values split into quoted <=255-octet strings."""
        if self.type == "TXT":
            data = " ".join(f'"{_escape(part)}"' for part in split_txt(self.value))
        else:
            data = self.value
        return f"{self.name}.\t{ttl}\tIN\t{self.type}\t{data}"

    def as_dict(self) -> dict:
        """Return the record as a JSON-ready mapping (the unsplit value for web forms, the zone line)."""
        return {"name": self.name, "type": self.type, "value": self.value, "note": self.note,
                "zone": self.zone_line()}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def split_txt(value: str, size: int = TXT_CHUNK) -> list[str]:
    """Split a TXT value into strings of at most size octets (the value must be ASCII)."""
    raw = value.encode("ascii")
    return [raw[i:i + size].decode("ascii") for i in range(0, len(raw), size)] or [""]


def zone_text(records: Sequence[Record], ttl: int = TTL) -> str:
    """Return records as zone-file text, each preceded by its note as a comment."""
    return "".join(f"; {record.note}\n{record.zone_line(ttl)}\n" for record in records)


def dkim_records(txt: Mapping[str, str]) -> list[Record]:
    """Return Records for DKIM TXT values (name -> value) as made by appliance.dkim_keys."""
    return [Record(name, "TXT", value,
                   f"DKIM 公開鍵（{'ed25519-sha256' if 'k=ed25519' in value else 'rsa-sha256'}）")
            for name, value in txt.items()]


def parse_ips(ips: Sequence[str]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Return the public addresses given by the operator, or raise InvalidInput naming the bad one."""
    parsed = []
    for text in ips:
        try:
            parsed.append(ipaddress.ip_address(text.strip()))
        except ValueError:
            raise InvalidInput(f"IPアドレス「{text}」を読めません（例: 192.0.2.1 または 2001:db8::1）") from None
    return parsed


def _spf(domain: str, ips: list) -> Record:
    mechanisms = ["a", "mx"] + [f"ip{address.version}:{address}" for address in ips] + ["-all"]
    if ips:
        note = f"SPF（{domain}）: このアプライアンスの送信元IPを許可"
    else:
        note = (f"SPF（{domain}）: 公開IPが分からないため a（このドメインの A レコード）と mx で許可しています。"
                "送信元IPを --ip で指定すると ip4:/ip6: で書きます")
    return Record(domain, "TXT", "v=spf1 " + " ".join(mechanisms), note)


def dns_records(config: Config, ips: Sequence[str] = ()) -> list[Record]:
    """Return every record to publish for [mail] domain, [mta] bounce_domain and the DKIM keys."""
    addresses = parse_ips(ips)
    domain = ascii_domain(config["mail"]["domain"])
    bounce = ascii_domain(config["mta"]["bounce_domain"] or domain)
    host = ascii_domain(config["mta"]["helo_name"] or domain)
    note = f"MX（{bounce}）: 不達通知・返信・空メール登録の受け口（このアプライアンス {host}）"
    if not addresses:
        note += f"。{host} の A/AAAA レコードも必要です"
    records = [Record(bounce, "MX", f"10 {host}.", note)]
    records += [Record(host, "A" if address.version == 4 else "AAAA", str(address),
                       f"MX 先ホスト {host} のアドレス") for address in addresses]
    records += [_spf(name, addresses) for name in dict.fromkeys([domain, bounce])]
    records += dkim_records(public_txt_records(config))
    records.append(Record(f"_dmarc.{domain}", "TXT",
                          f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}; adkim=s; aspf=r",
                          "DMARC: DKIM はドメイン完全一致、SPF は組織ドメインで一致すれば合格"))
    return records
