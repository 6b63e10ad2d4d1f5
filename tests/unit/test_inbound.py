"""Inbound mail routing (appliance/inbound.py): bounces, replies matched by token, empty-mail entry, bad input."""
import base64
import email
import json

import pytest

from appliance import contacts, enquiries, mail_auth, tokens
from appliance.errors import InvalidInput
from appliance.mail import render_deliveries, reply_address, reply_token
from appliance.mime import MailRefused
from appliance.messages import create_message
from appliance.models import AuditEntry, Delivery, DeliveryResult, Enquiry, Recipient, Reply, ReplyFile
from tests.unit.guardian_fixtures import PDF, PNG, issued_token, make_families
from tests.unit.mail_fixtures import DOMAIN, FakeDns, bounce_to, dkim_signed, inbound_mail, make_router


def _reply_to(app, families, guardian) -> str:
    return reply_address(issued_token(app, "reply", guardian.id, families.message.id), DOMAIN)


def test_reply_needed_mail_carries_a_per_guardian_reply_address(app, families):
    mails = render_deliveries(app, Delivery.select())
    reply_tos = {email.message_from_bytes(m.data)["Reply-To"] for m in mails}
    assert len(reply_tos) == 2 and all(r.startswith("<reply+") for r in reply_tos)
    local = next(iter(reply_tos)).strip("<>").partition("@")[0]
    grant = tokens.resolve_token(app, reply_token(local.upper()), "reply")      # case-folded by a mailer: still found
    assert grant.message_id == families.message.id


def test_mail_that_needs_no_reply_has_no_reply_address(app):
    make_families(app, reply_needed=False)
    assert all(email.message_from_bytes(m.data)["Reply-To"] is None for m in render_deliveries(app, Delivery.select()))


def test_reply_is_stored_for_the_token_holder_with_its_pdf(app, families):
    router = make_router(app)
    outcome = router.route_mail("taro@example.jp", _reply_to(app, families, families.taro),
                                inbound_mail("x", files=[("申込書.pdf", PDF, "application", "pdf")]), "192.0.2.1")
    reply = Reply.get_by_id(outcome.detail)
    assert (reply.guardian_id, reply.message_id, reply.via, reply.body) == (
        families.taro.id, families.message.id, "mail", "参加します。")
    assert [(f.filename, f.content_type) for f in ReplyFile.select()] == [("申込書.pdf", "application/pdf")]
    assert reply.auth_results.startswith(f"{DOMAIN}; dkim=none; spf=none")


def test_forged_from_changes_nothing_the_token_decides(app, families):
    """Hanako's address in From, Taro's reply address: the reply is Taro's, as the token says."""
    make_router(app).route_mail("hanako@example.jp", _reply_to(app, families, families.taro),
                                inbound_mail("x", sender="hanako@example.jp"), "192.0.2.1")
    assert [r.guardian_id for r in Reply.select()] == [families.taro.id]


def test_reply_with_an_unknown_or_expired_token_is_refused_whoever_it_claims_to_be(app, families, clock):
    router = make_router(app)
    guessed = reply_address(base64.urlsafe_b64encode(b"\x01" * 16).rstrip(b"=").decode(), DOMAIN)
    with pytest.raises(MailRefused) as refused:
        router.route_mail("taro@example.jp", guessed, inbound_mail("x"), "192.0.2.1")
    assert refused.value.reason == "recipient"
    address = _reply_to(app, families, families.taro)
    clock.advance(days=91)
    with pytest.raises(MailRefused):
        router.check_recipient(address)
    assert Reply.select().count() == 0


def test_reply_quoted_original_is_cut_and_auto_replies_are_dropped(app, families):
    router = make_router(app)
    address = _reply_to(app, families, families.taro)
    body = "欠席します。\n\n-----Original Message-----\n> 持ち物: 弁当、水筒\n"
    router.route_mail("taro@example.jp", address, inbound_mail("x", body), "192.0.2.1")
    assert Reply.get().body == "欠席します。"
    outcome = router.route_mail("taro@example.jp", address,
                                inbound_mail("x", "不在です", headers={"Auto-Submitted": "auto-replied"}), "192.0.2.1")
    assert outcome.kind == "ignored" and Reply.select().count() == 1


@pytest.mark.parametrize("files, reason", [
    ([("big.png", PNG + b"\x00" * (1024 * 1024), "image", "png")], "size"),
    ([("photos.zip", b"PK\x03\x04" + b"\x00" * 100, "application", "zip")], "content"),
    ([("photo.jpg", b"PK\x03\x04" + b"\x00" * 100, "image", "jpeg")], "content"),     # an archive by content
    ([("run.exe", b"MZ\x90\x00", "application", "octet-stream")], "content"),
])
def test_replies_with_files_we_do_not_take_are_refused_and_nothing_is_stored(app, families, files, reason):
    with pytest.raises(MailRefused) as refused:
        make_router(app).route_mail("taro@example.jp", _reply_to(app, families, families.taro),
                                    inbound_mail("x", files=files), "192.0.2.1")
    assert refused.value.reason == reason
    assert Reply.select().count() == 0 and ReplyFile.select().count() == 0


def test_dkim_is_verified_and_recorded_by_domain_only(app, families):
    signed, record = dkim_signed(inbound_mail("x", sender="taro@example.jp"), b"example.jp")
    router = make_router(app, dns=FakeDns({("s1._domainkey.example.jp", "TXT"): [record]}))
    address = _reply_to(app, families, families.taro)
    router.route_mail("taro@example.jp", address, signed, "192.0.2.1")
    router.route_mail("taro@example.jp", address, signed.replace("参加します".encode(), b"x"), "192.0.2.1")
    results = [r.auth_results for r in Reply.select().order_by(Reply.id)]
    assert "dkim=pass header.d=example.jp" in results[0]
    assert "dkim=fail header.d=example.jp" in results[1]
    assert all("taro@" not in r for r in results)


SPF_ZONE = {
    ("example.jp", "TXT"): [b"v=spf1 ip4:192.0.2.0/24 mx -all"],
    ("example.jp", "MX"): [(10, "mx.example.jp")],
    ("mx.example.jp", "A"): ["203.0.113.5"],
    ("mx.example.jp", "TXT"): [b"v=spf1 a -all"],
    ("soft.example", "TXT"): [b"v=spf1 ~all", b"google-site-verification=x"],        # other TXT records beside
    ("typo.example", "TXT"): [b"v=spf1 ip4:192.0.2.0/24 foo -all"],
}


@pytest.mark.parametrize("client, mail_from, helo, expected", [
    ("192.0.2.1", "taro@example.jp", "pc.example.jp", "spf=pass smtp.mailfrom=example.jp"),
    ("203.0.113.5", "taro@EXAMPLE.jp", "x", "spf=pass smtp.mailfrom=example.jp"),         # by its MX
    ("198.51.100.1", "taro@example.jp", "x", "spf=fail smtp.mailfrom=example.jp"),
    ("198.51.100.1", "taro@soft.example", "x", "spf=softfail smtp.mailfrom=soft.example"),
    ("198.51.100.1", "taro@nothing.example", "x", "spf=none smtp.mailfrom=nothing.example"),
    ("198.51.100.1", "taro@typo.example", "x", "spf=permerror smtp.mailfrom=typo.example"),
    ("198.51.100.1", "taro@slow.example", "x", "spf=temperror smtp.mailfrom=slow.example"),
    ("203.0.113.5", "", "mx.example.jp", "spf=pass smtp.helo=mx.example.jp"),              # a bounce: HELO
    ("192.0.2.1", "", "[192.0.2.1]", "spf=none"),                                          # nothing to ask
])
def test_spf_checks_the_client_against_the_mail_from_or_helo_domain(client, mail_from, helo, expected):
    assert mail_auth.spf_result(FakeDns(SPF_ZONE, failing=("slow.example",)), client, mail_from, helo) == expected


def test_spf_and_dkim_results_go_with_the_reply_and_dns_failures_never_refuse_it(app, families):
    address = _reply_to(app, families, families.taro)
    make_router(app, dns=FakeDns(SPF_ZONE)).route_mail("taro@example.jp", address, inbound_mail("x"), "192.0.2.1",
                                                       "pc.example.jp")
    signed, _record = dkim_signed(inbound_mail("x"), b"slow.example")
    failing = FakeDns(failing=("slow.example", "s1._domainkey.slow.example"))
    make_router(app, dns=failing).route_mail("taro@slow.example", address, signed, "192.0.2.1", "pc.example.jp")

    def broken(name, rdtype):
        raise RuntimeError("resolver bug")
    make_router(app, dns=broken).route_mail("taro@example.jp", address, inbound_mail("x"), "192.0.2.1", "pc.example.jp")
    results = [r.auth_results for r in Reply.select().order_by(Reply.id)]
    assert results == [f"{DOMAIN}; dkim=none; spf=pass smtp.mailfrom=example.jp; header.from=example.jp",
                       f"{DOMAIN}; dkim=temperror header.d=slow.example; spf=temperror smtp.mailfrom=slow.example; "
                       "header.from=example.jp",
                       f"{DOMAIN}; dkim=none; spf=temperror smtp.mailfrom=example.jp; header.from=example.jp"]
    assert ("s1._domainkey.slow.example", "TXT") in failing.asked


@pytest.mark.parametrize("sample", ["postfix.eml", "gmail.eml", "exchange.eml", "docomo.eml", "au.eml",
                                    "softbank.eml"])
def test_a_bounce_is_recorded_against_its_delivery(app, families, sample):
    delivery = Delivery.select().first()
    outcome = make_router(app).route_mail("", f"b-{delivery.id}@{DOMAIN}", bounce_to(delivery.id, sample), "192.0.2.9")
    assert outcome.kind == "bounce"
    result = DeliveryResult.get(DeliveryResult.delivery == delivery.id)
    assert result.outcome == "bounced" and "@" not in result.detail
    assert Delivery.get_by_id(delivery.id).state == "bounced"


@pytest.mark.parametrize("sample", ["postfix-delayed.eml", "vacation.eml"])
def test_delays_and_auto_replies_to_the_bounce_address_are_dropped(app, families, sample):
    delivery = Delivery.select().first()
    outcome = make_router(app).route_mail("x@example.org" if sample == "vacation.eml" else "",
                                          f"b-{delivery.id}@{DOMAIN}", bounce_to(delivery.id, sample), "192.0.2.9")
    assert outcome.kind == "ignored" and DeliveryResult.select().count() == 0


def test_bounces_on_three_messages_suspend_the_address(app, families, clock):
    router, message = make_router(app), families.message
    for n in range(3):
        if n:
            message = create_message(app, families.school, audience="all", subject=f"連絡{n}", body="本文")
        delivery = (Delivery.select().join(Recipient)
                    .where((Recipient.guardian == families.hanako.id) & (Delivery.message == message.id)).get())
        router.route_mail("", f"b-{delivery.id}@{DOMAIN}", bounce_to(delivery.id, "gmail.eml"), "192.0.2.9")
        suspended = contacts.summarise_contacts([families.hanako.id])[families.hanako.id].suspended
        assert suspended == ({"email": 1} if n == 2 else {})
        clock.advance(seconds=1)


@pytest.mark.parametrize("address, reason", [
    ("someone@example.com", "relay"),
    ("b-0190f3a2-7c4e-7d10-9a6b-3c2f1e0d9b8a@example.com", "relay"),
    (f"postmaster-x@{DOMAIN}", "recipient"),
    (f"b-0190f3a2-7c4e-7d10-9a6b-3c2f1e0d9b8a@{DOMAIN}", "recipient"),     # no such delivery
])
def test_recipients_outside_our_routes_are_refused(app, address, reason):
    with pytest.raises(MailRefused) as refused:
        make_router(app).check_recipient(address)
    assert refused.value.reason == reason


def test_empty_mail_calls_the_registration_function_with_the_code_and_sender(app):
    calls = []

    def register(app_, code, address):
        calls.append((code, address))
        if code != "GOOD1234":
            raise InvalidInput("登録コードが正しくないか、有効期限が切れています。")
        return "sent"

    router = make_router(app, register=register)
    mail = inbound_mail(f"entry-GOOD1234@{DOMAIN}", "", sender="Taro <taro@docomo.ne.jp>")
    assert router.route_mail("taro@docomo.ne.jp", f"entry-GOOD1234@{DOMAIN}", mail, "192.0.2.5").detail == "sent"
    assert calls == [("GOOD1234", "taro@docomo.ne.jp")]
    with pytest.raises(MailRefused) as refused:
        router.route_mail("taro@docomo.ne.jp", f"entry-BAD00000@{DOMAIN}", mail, "192.0.2.5")
    assert refused.value.reason == "recipient" and "登録コード" in str(refused.value)
    with pytest.raises(MailRefused) as bounced:
        router.route_mail("", f"entry-GOOD1234@{DOMAIN}", mail, "192.0.2.5")
    assert bounced.value.reason == "policy"


def test_guessing_codes_from_one_client_is_slowed_down(app):
    def register(app_, code, address):
        raise InvalidInput("登録コードが正しくありません。")

    router = make_router(app, register=register)
    mail = inbound_mail("x", "")
    reasons = []
    for n in range(22):
        try:
            router.route_mail("a@example.jp", f"entry-CODE{n:04d}@{DOMAIN}", mail, "198.51.100.7")
        except MailRefused as exc:
            reasons.append(exc.reason)
    assert reasons[:20] == ["recipient"] * 20 and reasons[20:] == ["rate", "rate"]


def test_bare_line_feeds_are_refused_before_anything_is_parsed(app, families):
    """SMTP smuggling: a message hiding <LF>.<LF> and a second transaction is refused whole."""
    smuggled = inbound_mail("x") + b"\n.\nMAIL FROM:<ceo@example.com>\r\nRCPT TO:<x@example.com>\r\nDATA\r\nHi\r\n"
    with pytest.raises(MailRefused) as refused:
        make_router(app).route_mail("taro@example.jp", _reply_to(app, families, families.taro), smuggled, "192.0.2.1")
    assert refused.value.reason == "policy" and Reply.select().count() == 0


def test_huge_headers_and_deep_mime_are_refused(app, families):
    router, address = make_router(app), _reply_to(app, families, families.taro)
    huge = b"X-Junk: " + b"a" * (70 * 1024) + b"\r\n" + inbound_mail("x")
    nested = inbound_mail("x")
    for n in range(12):
        nested = (f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n'.encode() + nested
                  + f"\r\n--b{n}--\r\n".encode())
    for raw in (huge, nested):
        with pytest.raises(MailRefused) as refused:
            router.route_mail("taro@example.jp", address, raw, "192.0.2.1")
        assert refused.value.reason == "content"
    assert Reply.select().count() == 0


def test_wrong_charsets_are_read_as_japanese_mailers_mean_them(app, families):
    """Declared ISO-2022-JP with a NEC special character, and Shift_JIS that is really CP932."""
    router, address = make_router(app), _reply_to(app, families, families.taro)
    nec = b"\x1b$B\x2d\x21" + "番で参加します".encode("iso-2022-jp")[3:]      # ① as Windows writes it (CP50220)
    for charset, body in (("iso-2022-jp", nec), ("shift_jis", "～よろしくお願いします".encode("cp932")),
                          ("x-unknown", "参加します".encode())):
        raw = (f"From: taro@example.jp\r\nTo: {address}\r\nSubject: Re\r\nMIME-Version: 1.0\r\n"
               f"Content-Type: text/plain; charset={charset}\r\n\r\n").encode() + body + b"\r\n"
        router.route_mail("taro@example.jp", address, raw, "192.0.2.1")
    assert [r.body for r in Reply.select().order_by(Reply.id)] == ["①番で参加します", "～よろしくお願いします", "参加します"]


def test_an_enquiry_by_mail_lands_in_the_operators_list_with_the_sender_sealed(app):
    mail = inbound_mail(f"help@{DOMAIN}", "登録のメールが届きません。\n\n> 以前のメール\n",
                        sender="山田 花子 <hanako@example.jp>", files=[("画面.png", PNG, "image", "png")])
    outcome = make_router(app).route_mail("hanako@example.jp", f"HELP@{DOMAIN}", mail, "192.0.2.8")
    assert outcome.kind == "enquiry"
    [listed] = enquiries.list_enquiries("open")
    assert (listed.id, listed.name, listed.school) == (outcome.detail, "山田 花子", None)
    assert listed.body == "件名: Re: 遠足のお知らせ\n登録のメールが届きません。\n（添付ファイル1件は保存していません）"
    assert b"hanako@example.jp" not in bytes(Enquiry.get_by_id(listed.id).reach_sealed)
    assert enquiries.reveal_enquiry(app, listed.id, actor="op").reach == "hanako@example.jp"
    assert json.loads(AuditEntry.get(AuditEntry.action == "enquiry.create").detail) == {"via": "mail"}


def test_enquiry_mail_without_a_name_bounces_and_auto_replies_are_not_stored(app):
    router = make_router(app)
    router.route_mail("taro@docomo.ne.jp", f"help@{DOMAIN}", inbound_mail("x", "届きません", sender="taro@docomo.ne.jp"),
                      "192.0.2.8")
    assert [e.name for e in enquiries.list_enquiries("open")] == [enquiries.MAIL_NAME]
    out_of_office = inbound_mail("x", "不在です", headers={"Auto-Submitted": "auto-replied"})
    assert router.route_mail("taro@example.jp", f"help@{DOMAIN}", out_of_office, "192.0.2.8").kind == "ignored"
    with pytest.raises(MailRefused) as bounce:
        router.route_mail("", f"help@{DOMAIN}", inbound_mail("x"), "192.0.2.8")
    with pytest.raises(MailRefused) as too_long:
        router.route_mail("taro@example.jp", f"help@{DOMAIN}", inbound_mail("x", "あ" * 2100), "192.0.2.8")
    assert (bounce.value.reason, too_long.value.reason) == ("policy", "content") and "2000文字" in str(too_long.value)
    assert Enquiry.select().count() == 1


def test_enquiries_by_mail_are_limited_per_sender_and_per_client(app):
    router = make_router(app)

    def send(sender: str, peer: str) -> str:
        try:
            return router.route_mail(sender, f"help@{DOMAIN}", inbound_mail("x", "教えてください", sender=sender), peer).kind
        except MailRefused as refused:
            return refused.reason
    assert [send("taro@example.jp", "192.0.2.8") for _ in range(6)] == ["enquiry"] * 5 + ["rate"]
    assert send("jiro@example.jp", "192.0.2.8") == "enquiry"         # another sender from the same server
    assert [send(f"g{n}@example.jp", "198.51.100.9") for n in range(31)][-2:] == ["enquiry", "rate"]
    assert Enquiry.select().count() == 5 + 1 + 30


def test_an_enquiry_with_raw_utf8_headers_keeps_its_japanese(app):
    """Headers in 8-bit UTF-8 (SMTPUTF8 mailers) were read as U+FFFD: the name and subject were lost."""
    raw = "From: 石川 花子 <hanako@example.jp>\r\nSubject: 登録できません\r\n\r\n返事が来ません。\r\n".encode()
    make_router(app).route_mail("hanako@example.jp", f"help@{DOMAIN}", raw, "192.0.2.8")
    [listed] = enquiries.list_enquiries("open")
    assert (listed.name, listed.body) == ("石川 花子", "件名: 登録できません\n返事が来ません。")
