"""The DNS records to publish: TXT splitting, zone-file form, what is listed, `appliance dns records`."""
import json

import pytest
from click.testing import CliRunner

from appliance.cli.common import CliState
from appliance.config import load_config
from appliance.dkim_keys import DkimKeyMissing
from appliance.dns_records import Record, dns_records, split_txt, zone_text
from appliance.errors import InvalidInput
from mta.cli import dns
from mta.dkim import make_keys


@pytest.fixture
def config(tmp_path):
    """A data dir with an RSA and an Ed25519 key, and a separate bounce domain."""
    config = load_config(tmp_path / "data", environ={}, overrides={
        "mail": {"domain": "renraku.example"},
        "mta": {"bounce_domain": "bounce.renraku.example", "helo_name": "mx1.renraku.example", "dkim_ed25519": True}})
    make_keys(config, "renraku.example", "renraku")
    return config


def by_name_and_type(records):
    return {(record.name, record.type): record.value for record in records}


def test_split_txt_into_255_octet_strings():
    assert split_txt("a" * 255) == ["a" * 255]
    assert split_txt("a" * 256) == ["a" * 255, "a"]
    assert split_txt("a" * 600) == ["a" * 255, "a" * 255, "a" * 90]
    assert split_txt("") == [""]


def test_zone_line_quotes_and_splits_txt():
    record = Record("sel._domainkey.example.jp", "TXT", "v=DKIM1; k=rsa; p=" + "A" * 392, "note")
    line = record.zone_line()
    assert line.startswith('sel._domainkey.example.jp.\t3600\tIN\tTXT\t"v=DKIM1; k=rsa; p=AAA')
    assert [len(part) for part in line.split('"')[1::2]] == [255, 155]
    assert Record("x.jp", "TXT", 'say "hi" \\', "n").zone_line().endswith('"say \\"hi\\" \\\\"')


def test_every_record_to_publish(config):
    records = dns_records(config)
    assert [(record.name, record.type) for record in records] == [
        ("bounce.renraku.example", "MX"), ("renraku.example", "TXT"), ("bounce.renraku.example", "TXT"),
        ("renraku._domainkey.renraku.example", "TXT"), ("renraku-ed._domainkey.renraku.example", "TXT"),
        ("_dmarc.renraku.example", "TXT")]
    mx, spf, bounce_spf, rsa_key, ed_key, dmarc = records
    assert mx.value == "10 mx1.renraku.example."
    assert spf.value == bounce_spf.value == "v=spf1 a mx -all"
    assert "公開IPが分からない" in spf.note and "--ip" in spf.note
    assert rsa_key.value.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    assert ed_key.value.startswith("v=DKIM1; k=ed25519; p=")
    assert dmarc.value == "v=DMARC1; p=quarantine; rua=mailto:dmarc@renraku.example; adkim=s; aspf=r"


def test_public_addresses_go_into_spf_and_the_mx_host(config):
    records = dns_records(config, ["192.0.2.1", "2001:db8::25"])
    values = by_name_and_type(records)
    assert values[("renraku.example", "TXT")] == "v=spf1 a mx ip4:192.0.2.1 ip6:2001:db8::25 -all"
    assert values[("mx1.renraku.example", "A")] == "192.0.2.1"
    assert values[("mx1.renraku.example", "AAAA")] == "2001:db8::25"


def test_one_domain_for_mail_and_bounces(tmp_path):
    config = load_config(tmp_path / "data", environ={}, overrides={"mail": {"domain": "renraku.example"}})
    make_keys(config, "renraku.example", "renraku")
    records = dns_records(config)
    assert [(r.name, r.type) for r in records] == [
        ("renraku.example", "MX"), ("renraku.example", "TXT"), ("renraku._domainkey.renraku.example", "TXT"),
        ("_dmarc.renraku.example", "TXT")]
    assert records[0].value == "10 renraku.example."


def test_a_bad_address_is_invalid_input(config):
    with pytest.raises(InvalidInput, match="IPアドレス「192.0.2.300」を読めません"):
        dns_records(config, ["192.0.2.300"])


def test_without_dkim_keys_the_error_says_what_to_run(tmp_path):
    config = load_config(tmp_path / "data", environ={}, overrides={"mail": {"domain": "renraku.example"}})
    with pytest.raises(DkimKeyMissing, match="appliance dkim init"):
        dns_records(config)


def test_zone_text_puts_each_note_above_its_record(config):
    text = zone_text(dns_records(config))
    lines = text.splitlines()
    assert all(line.startswith("; ") for line in lines[0::2])
    assert lines[1].startswith("bounce.renraku.example.\t3600\tIN\tMX\t10 mx1.renraku.example.")


# --- appliance dns records ------------------------------------------------------------------------

@pytest.fixture
def dns_cli(app):
    make_keys(app.config, "renraku.example", "renraku")

    def invoke(*args):
        return CliRunner().invoke(dns, list(args), obj=CliState(str(app.data_dir)))
    return invoke


def test_dns_records_prints_the_zone(dns_cli):
    result = dns_cli("records", "--ip", "192.0.2.1")
    assert result.exit_code == 0, result.output
    assert 'renraku.example.\t3600\tIN\tTXT\t"v=spf1 a mx ip4:192.0.2.1 -all"' in result.stdout
    assert "_dmarc.renraku.example." in result.stdout
    assert "; DKIM 公開鍵（rsa-sha256）" in result.stdout


def test_dns_records_json(dns_cli):
    result = dns_cli("records", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert {r["type"] for r in records} == {"MX", "TXT"}
    assert all(set(r) == {"name", "type", "value", "note", "zone"} for r in records)


def test_dns_records_bad_ip_is_one_japanese_line(dns_cli):
    result = dns_cli("records", "--ip", "example.jp")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "エラー: IPアドレス「example.jp」を読めません（例: 192.0.2.1 または 2001:db8::1）\n"
