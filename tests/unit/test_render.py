"""Guardian mail: charsets, folding, line lengths, list headers, stable ids, attachments."""
from dataclasses import replace
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest

from appliance import db
from appliance.config import load_config
from appliance.mail import JIS, UTF8, MessageTemplate, charset_for, render_guardian_mail
from appliance.models import Message
from appliance.schools import add_school

ADDRESSES = ["taro@example.jp", "taro..yamada.@docomo.ne.jp"]


@pytest.fixture
def app(app):
    """The appliance behind https, as in production."""
    return replace(app, config=load_config(app.data_dir, environ={}, overrides={
        "web": {"base_url": "https://renraku.example.jp"}, "mail": {"domain": "mail.renraku.example.jp"}}))


@pytest.fixture
def school(app):
    return add_school(app, "sakura-1", "さくら市立さくら小学校")


def _message(app, school, subject="臨時休校のお知らせ", body="本日は大雪のため臨時休校とします。", **fields):
    now = app.clock.now()
    with db.write():
        return Message.create(school=school, subject=subject, body=body, audience="all", send_at=now,
                              created_at=now, **fields)


def _render(app, message, charset=UTF8, *, guardian_id="g-1", name="山田 太郎", children=("山田 一郎",),
            addresses=ADDRESSES, unsubscribe="UnsubscribeTokenXXXXXX", attachments=()):
    return render_guardian_mail(app, message, guardian_id, name, list(children), addresses,
                                "ReadTokenXXXXXXXXXXXXX", unsubscribe, charset=charset, attachments=attachments)


def _parse(data: bytes):
    mail = message_from_bytes(data, policy=policy.default)
    assert all(not part.defects for part in mail.walk()), [part.defects for part in mail.walk()]
    return mail


def _text(mail) -> str:
    return mail.get_body(("plain",)).get_content()


def _lines(data: bytes) -> list[bytes]:
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF"
    return data.split(b"\r\n")


def test_utf8_mail_decodes_back(app, school):
    data = _render(app, _message(app, school))
    mail = _parse(data)
    assert mail["Subject"] == "臨時休校のお知らせ"
    assert b"Subject: =?UTF-8?B?" in data
    assert mail.get_content_charset() == "utf-8" and mail["Content-Transfer-Encoding"] == "base64"
    text = _text(mail)
    assert text.startswith("山田 太郎 様\r\n（山田 一郎さんの保護者様）")
    assert "本日は大雪のため臨時休校とします。" in text
    assert "下のリンクを押すと学校に「読みました」と伝わります。" in text
    assert "https://renraku.example.jp/r/ReadTokenXXXXXXXXXXXXX" in text.splitlines()
    assert "さくら市立さくら小学校" in text and "送信専用" in text


def test_iso_2022_jp_mail_is_7bit_and_decodes_back(app, school):
    data = _render(app, _message(app, school), JIS)
    assert all(byte < 128 for byte in data)
    mail = _parse(data)
    assert b"Subject: =?ISO-2022-JP?B?" in data
    assert mail["Subject"] == "臨時休校のお知らせ"
    assert mail.get_content_charset() == "iso-2022-jp" and mail["Content-Transfer-Encoding"] == "7bit"
    assert "本日は大雪のため臨時休校とします。" in _text(mail)
    assert "山田 太郎 様" in _text(mail)


def test_characters_iso_2022_jp_lacks_are_replaced_not_fatal(app, school):
    message = _message(app, school, subject="①運動会😀のお知らせ", body="ｱｲｳの件～　髙橋先生より")
    mail = _parse(_render(app, message, JIS, name="髙橋 花子", children=["山﨑 一郎"]))
    assert mail["Subject"] == "1運動会〓のお知らせ"
    text = _text(mail)
    assert "アイウの件〜　高橋先生より" in text
    assert "高橋 花子 様" in text and "山崎 一郎さん" in text


def test_the_same_characters_go_unchanged_in_utf8(app, school):
    message = _message(app, school, subject="①運動会😀のお知らせ", body="ｱｲｳの件～　髙橋先生より")
    mail = _parse(_render(app, message, name="髙橋 花子"))
    assert mail["Subject"] == "①運動会😀のお知らせ"
    assert "ｱｲｳの件～　髙橋先生より" in _text(mail) and "髙橋 花子 様" in _text(mail)


@pytest.mark.parametrize("charset", [UTF8, JIS])
def test_long_subjects_are_folded_into_short_encoded_words(app, school, charset):
    subject = "運動会の延期と当日の持ち物、集合時間、雨天時の連絡方法についてのお知らせ" * 3
    data = _render(app, _message(app, school, subject=subject), charset)
    head = data.split(b"\r\n\r\n")[0]
    subject_lines = head.split(b"Subject: ")[1].split(b"\r\nDate:")[0].split(b"\r\n")
    assert len(subject_lines) > 3
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"Message-ID"))
    assert _parse(data)["Subject"] == subject


@pytest.mark.parametrize("charset", [UTF8, JIS])
@pytest.mark.parametrize("unit", ["あ", "a漢", "¥漢"])
def test_no_line_passes_998_bytes_for_a_long_body_without_spaces(app, school, charset, unit):
    body = (unit * 5000)[:5000]
    data = _render(app, _message(app, school, body=body), charset)
    assert max(len(line) for line in _lines(data)) <= 998
    assert body in _text(_parse(data)).replace("\r\n", "")


def test_utf8_body_lines_are_base64_of_76(app, school):
    data = _render(app, _message(app, school, body="あ" * 5000))
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in _lines(body)) == 76


def test_long_japanese_lines_break_after_punctuation_for_feature_phones(app, school):
    sentence = "本日は大雪のため、全校で臨時休校とします。"
    text = _text(_parse(_render(app, _message(app, school, body=sentence * 40), JIS)))
    wrapped = text[text.index("本日"):text.index("■")].split()
    assert "".join(wrapped) == sentence * 40
    assert len(wrapped) > 1 and all(line.endswith(("。", "、")) for line in wrapped)


def test_routine_mail_offers_one_click_unsubscribe(app, school):
    mail = _parse(_render(app, _message(app, school)))
    assert mail["List-Unsubscribe"] == ("<https://renraku.example.jp/u/UnsubscribeTokenXXXXXX>, "
                                        "<mailto:unsubscribe@mail.renraku.example.jp?subject=UnsubscribeTokenXXXXXX>")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_unsubscribe_mail_goes_to_the_bounce_domain(app, school):
    app = replace(app, config=load_config(app.data_dir, environ={}, overrides={
        "mta": {"bounce_domain": "bounce.renraku.example.jp"}}))
    assert "@bounce.renraku.example.jp?" in _parse(_render(app, _message(app, school)))["List-Unsubscribe"]


def test_emergency_mail_is_marked_and_cannot_be_unsubscribed(app, school):
    mail = _parse(_render(app, _message(app, school, priority="emergency")))
    assert mail["Subject"] == "【緊急】臨時休校のお知らせ"
    assert mail["List-Unsubscribe"] is None and mail["List-Unsubscribe-Post"] is None


def test_list_headers_and_auto_submitted(app, school):
    mail = _parse(_render(app, _message(app, school)))
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["List-Id"] == "さくら市立さくら小学校 <sakura-1.mail.renraku.example.jp>"
    assert mail["From"] == "連絡網 <noreply@mail.renraku.example.jp>"
    assert mail["MIME-Version"] == "1.0"


def test_date_is_shown_in_tokyo(app, school):
    assert _parse(_render(app, _message(app, school)))["Date"] == "Mon, 06 Apr 2026 09:00:00 +0900"


def test_message_id_is_stable_per_message_and_guardian(app, school, clock):
    message = _message(app, school)
    first = _parse(_render(app, message))["Message-ID"]
    clock.advance(hours=2)
    assert _parse(_render(app, message))["Message-ID"] == first
    assert _parse(_render(app, message, guardian_id="g-2"))["Message-ID"] != first
    assert first == f"<{message.id}.g-1@mail.renraku.example.jp>"


def test_to_lists_all_of_the_guardians_addresses(app, school):
    many = [f"parent.with.a.rather.long.address.{i}@example.ne.jp" for i in range(4)]
    data = _render(app, _message(app, school), addresses=many)
    mail = _parse(data)
    assert [a.addr_spec for a in mail["To"].addresses] == many
    head = data.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"Message-ID"))


def test_carrier_addresses_are_written_as_they_are(app, school):
    assert b"To: taro@example.jp, taro..yamada.@docomo.ne.jp\r\n" in _render(app, _message(app, school))


def test_attachments_keep_their_japanese_names(app, school):
    files = [SimpleNamespace(filename="学年だより　第12号（4月）令和8年度版・保護者の皆様へのお知らせ.pdf",
                             content_type="application/pdf", data=b"%PDF-1.4\n" + bytes(range(256)) * 50),
             SimpleNamespace(filename="持ち物.txt", content_type="text/plain", data="水筒".encode()),
             SimpleNamespace(filename="plan.csv", content_type="not a type", data=b"a,b\n")]
    for charset in (UTF8, JIS):
        data = _render(app, _message(app, school), charset, attachments=files)
        assert max(len(line) for line in _lines(data)) <= 998
        mail = _parse(data)
        assert mail.get_content_type() == "multipart/mixed"
        assert "本日は大雪のため" in _text(mail)
        attached = list(mail.iter_attachments())
        assert [a.get_filename() for a in attached] == [f.filename for f in files]
        assert [a.get_content_type() for a in attached] == ["application/pdf", "text/plain",
                                                            "application/octet-stream"]
        assert [a.get_payload(decode=True) for a in attached] == [f.data for f in files]


def test_reply_needed_mail_says_so(app, school):
    assert "返信が必要です" in _text(_parse(_render(app, _message(app, school, reply_needed=True))))
    assert "返信が必要です" not in _text(_parse(_render(app, _message(app, school))))


def test_a_guardian_without_linked_children_is_greeted_by_name_alone(app, school):
    text = _text(_parse(_render(app, _message(app, school), children=())))
    assert text.startswith("山田 太郎 様\r\n\r\n本日は")


def test_one_template_serves_every_guardian(app, school):
    template = MessageTemplate(app, _message(app, school), UTF8)
    first = _parse(template.render("g-1", "山田 太郎", [], ["a@example.jp"], "tokenA"))
    second = _parse(template.render("g-2", "佐藤 花子", [], ["b@example.jp"], "tokenB"))
    assert "山田 太郎 様" in _text(first) and "佐藤 花子 様" in _text(second)
    assert "/r/tokenB" in _text(second) and "/r/tokenA" not in _text(second)
    assert first["Subject"] == second["Subject"] and first["Date"] == second["Date"]


def test_charset_follows_the_domain_list(app):
    config = load_config(app.data_dir, environ={}, overrides={"mta": {"iso2022jp_domains": ["docomo.ne.jp"]}})
    assert charset_for("docomo.ne.jp", config) == JIS
    assert charset_for("DoCoMo.ne.jp", config) == JIS
    assert charset_for("mail.docomo.ne.jp", config) == JIS
    assert charset_for("notdocomo.ne.jp", config) == UTF8
    assert charset_for("example.jp", config) == UTF8
    assert charset_for("docomo.ne.jp", app.config) == UTF8
