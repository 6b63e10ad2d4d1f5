"""The newcomer's path end to end: make demo-setup, serve, send through the CLI, mail at the sink."""
import json
import subprocess
from email import message_from_bytes, policy

import dkim

from appliance.config import load_config
from appliance.dkim_keys import public_txt_records
from tests.integration.site import REPO, http_get, wait_until


def _json(result) -> dict:
    return json.loads(result.stdout)


def test_make_demo_setup_then_serve_delivers_mail_to_the_sink(site, tmp_path):
    """`make demo`'s set-up path in a temporary dir, then its services (the MTA among them), then a real send."""
    setup = subprocess.run(["make", "-C", str(REPO), "demo-setup", f"DEMO_DATA={site.data_dir}"],
                           env=site.env, capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stderr
    assert "demo-operator" in setup.stdout and (site.data_dir / "demo-logins.txt").stat().st_mode & 0o777 == 0o600

    site.serve()
    status, page = http_get(site.base_url + "/")                 # redirected to the staff sign-in
    assert status == 200 and "職員ログイン" in page.decode()

    body = tmp_path / "body.txt"
    body.write_text("本日は大雪のため臨時休校とします。\n", encoding="utf-8")
    sent = _json(site.run("send", "--school", "demo", "--audience", "class:1-1", "--subject",
                          "臨時休校のお知らせ", "--body-file", str(body), "--priority", "emergency"))
    expected = sent["deliveries"]["email"]
    assert expected > 0

    sink = site.data_dir / "sink"
    wait_until(lambda: len(list(sink.glob("*.eml"))) >= expected, timeout=90, what="mail at the sink")
    raw = [p.read_bytes() for p in sink.glob("*.eml")]
    mails = [message_from_bytes(data, policy=policy.default) for data in raw]
    assert len(mails) == expected                          # each address once
    [txt] = public_txt_records(load_config(site.data_dir, environ={})).values()
    assert all(dkim.verify(data, dnsfunc=lambda name, timeout=5: txt.encode()) for data in raw)
    assert all(m["X-Sink-Mail-From"].startswith("b-") for m in mails)   # VERP: one sender per delivery
    assert {m["Subject"] for m in mails} == {"【緊急】臨時休校のお知らせ"}
    assert all("大雪" in m.get_body(("plain",)).get_content() for m in mails)
    captured = json.loads(site.run("mta", "captured", "--limit", "1").stdout)
    assert captured[0]["subject"] == "【緊急】臨時休校のお知らせ"

    health = json.loads(http_get(site.base_url + "/healthz")[1])
    assert health["ok"] and health["mta"]["due"] == 0


def test_operator_cli_end_to_end(site, tmp_path):
    """init, school, staff, roster import (CP932) with guardians, audience, rollover, transfer, send."""
    site.run("init")
    site.run("school", "add", "s1", "さくら小学校")
    password = tmp_path / "password"
    password.write_text("correct horse battery\n", encoding="utf-8")
    site.run("user", "add", "--role", "operator", "--login", "op", "--password-file", str(password))
    site.run("user", "add", "--school", "s1", "--role", "teacher", "--login", "t1",
             "--password-file", str(password))

    roster = tmp_path / "roster.csv"
    roster.write_bytes((
        "学年,組,出席番号,氏名,ふりがな,学籍番号,部活動,通学路,保護者氏名,メール1,メール2\r\n"
        "1,1,1,佐藤 蓮,さとう れん,101,サッカー部,北ルート,佐藤 花子,hanako@example.jp,h2@example.jp\r\n"
        "3,1,1,佐藤 葵,さとう あおい,301,吹奏楽部,北ルート,佐藤 花子,hanako@example.jp,h2@example.jp\r\n"
        "6,2,5,鈴木 湊,すずき みなと,601,サッカー部,南ルート,鈴木 一郎,ichiro@example.jp,\r\n"
    ).encode("cp932"))
    imported = _json(site.run("roster", "import", "--school", "s1", str(roster), "--with-guardians"))
    assert (imported["created"], imported["guardians_created"]) == (3, 2)
    again = _json(site.run("roster", "import", "--school", "s1", str(roster), "--with-guardians"))
    assert again["unchanged"] == 3 and again["guardians_created"] == 0

    bad = tmp_path / "bad.csv"
    bad.write_bytes("学年,組,出席番号,氏名,ふりがな\r\n9,1,1,山田 太郎,\r\n".encode("cp932"))
    failed = site.run("roster", "import", "--school", "s1", str(bad), check=False)
    assert failed.returncode == 1 and "2行目" in failed.stderr.decode()

    assert _json(site.run("audience", "--school", "s1", "club:サッカー部 AND route:北ルート")) == {
        "students": 1, "guardians": 1}
    assert _json(site.run("audience", "--school", "s1", "all")) == {"students": 3, "guardians": 2}
    bad_rule = site.run("audience", "--school", "s1", "grade:1 AND (club:x", check=False)
    assert bad_rule.returncode == 1 and "エラー" in bad_rule.stderr.decode()

    promoted = _json(site.run("roster", "promote", "--school", "s1", "--force"))
    assert (promoted["promoted"], promoted["graduated"]) == (2, 1)
    site.run("roster", "transfer-out", "--school", "s1", "--student", "301")
    assert _json(site.run("audience", "--school", "s1", "all")) == {"students": 1, "guardians": 1}

    body = tmp_path / "body.txt"
    body.write_text("明日の遠足は予定どおり実施します。", encoding="utf-8")
    sent = _json(site.run("send", "--school", "s1", "--audience", "all", "--subject", "遠足",
                          "--body-file", str(body), "--at", "2030-04-01T07:00"))
    assert sent["recipients"] == 1 and sent["deliveries"] == {"email": 2}

    health = site.run("health", check=False)
    assert json.loads(health.stdout)["db"]["ok"] is True
