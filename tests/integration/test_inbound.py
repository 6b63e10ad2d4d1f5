"""The inbound SMTP server on loopback, driven by smtplib: bounces, replies, size, relaying, entry, smuggling,
enquiries; DKIM and SPF asked of a real DNS server on loopback."""
import smtplib
import socket

import pytest

from appliance import contacts
from appliance.errors import InvalidInput
from appliance.mail import reply_address
from appliance.messages import create_message
from appliance.models import Delivery, Enquiry, Guardian, Recipient, Reply
from mta.inbound import controller_for
from mta.resolver import DnsLookup
from tests.integration.site import free_port
from tests.unit.guardian_fixtures import PDF, issued_token
from tests.unit.mail_fixtures import DOMAIN, bounce_to, dkim_signed, inbound_mail


@pytest.fixture
def entries():
    return []


@pytest.fixture
def server(app, families, entries, dns_server):
    def register(app_, code, address):
        if code != "GOOD1234":
            raise InvalidInput("登録コードが正しくないか、有効期限が切れています。")
        entries.append((code, address))
        return "sent"

    port = free_port()
    controller = controller_for(app, bind=f"127.0.0.1:{port}", register=register,
                                dns=DnsLookup([(dns_server.host, dns_server.port)]))
    controller.start()
    yield port
    controller.stop()


def _smtp(port) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    client.ehlo("client.example.org")
    return client


def test_bounces_to_verp_addresses_suspend_the_address_after_three_messages(app, families, server, clock):
    message = families.message
    for n in range(3):
        if n:
            message = create_message(app, families.school, audience="all", subject=f"連絡{n}", body="本文")
        delivery = (Delivery.select().join(Recipient)
                    .where((Recipient.guardian == families.hanako.id) & (Delivery.message == message.id)).get())
        with _smtp(server) as client:
            client.sendmail("", [f"b-{delivery.id}@{DOMAIN}"], bounce_to(delivery.id, "docomo.eml"))
        clock.advance(seconds=1)
    assert contacts.summarise_contacts([families.hanako.id])[families.hanako.id].suspended == {"email": 1}


def test_a_reply_with_a_pdf_is_stored_and_shown_to_the_school(app, families, server, staff, signed_in):
    address = reply_address(issued_token(app, "reply", families.taro.id, families.message.id), DOMAIN)
    with _smtp(server) as client:
        client.sendmail("taro@example.jp", [address],
                        inbound_mail(address, "申込書を送ります。", files=[("申込書.pdf", PDF, "application", "pdf")]))
    [reply] = Reply.select()
    assert (reply.guardian_id, reply.via) == (families.taro.id, "mail")
    page = signed_in("op").get(f"/admin/s/{families.school.code}/messages/{families.message.id}/replies")
    html = page.get_data(as_text=True)
    assert "申込書を送ります。" in html and "申込書.pdf" in html and "taro@example.jp" not in html


def test_spf_and_dkim_of_replies_are_asked_of_dns_and_shown_to_the_school(app, families, server, dns_server, signed_in):
    """Every reply is taken whatever its results; the school sees them beside it (domains only)."""
    signed, key_record = dkim_signed(inbound_mail("x"), b"example.jp")
    long_policy = "v=spf1 " + " ".join(f"ip4:10.{n}.0.0/16" for n in range(20)) + " ip4:127.0.0.0/8 -all"
    dns_server.zone.add_txt("example.jp", long_policy, "another=record")       # two strings in DNS: joined
    dns_server.zone.add_txt("s1._domainkey.example.jp", key_record.decode())
    dns_server.zone.add_txt("forged.example", "v=spf1 ip4:192.0.2.0/24 -all")
    dns_server.zone.servfail("broken.example")
    address = reply_address(issued_token(app, "reply", families.taro.id, families.message.id), DOMAIN)
    with _smtp(server) as client:
        client.sendmail("taro@example.jp", [address], signed)
        client.sendmail("taro@forged.example", [address], inbound_mail(address))
        client.sendmail("taro@broken.example", [address], inbound_mail(address))
        client.sendmail("", [address], inbound_mail(address))     # a null sender: the HELO name is checked
    results = [r.auth_results for r in Reply.select().order_by(Reply.id)]
    assert results == [
        f"{DOMAIN}; dkim=pass header.d=example.jp; spf=pass smtp.mailfrom=example.jp; header.from=example.jp",
        f"{DOMAIN}; dkim=none; spf=fail smtp.mailfrom=forged.example; header.from=example.jp",
        f"{DOMAIN}; dkim=none; spf=temperror smtp.mailfrom=broken.example; header.from=example.jp",
        f"{DOMAIN}; dkim=none; spf=none smtp.helo=client.example.org; header.from=example.jp"]
    page = signed_in("op").get(f"/admin/s/{families.school.code}/messages/{families.message.id}/replies")
    html = page.get_data(as_text=True)
    assert "spf=pass smtp.mailfrom=example.jp" in html and "spf=fail" in html and "taro@" not in html


def test_an_oversize_mail_is_refused_at_data_in_japanese(app, families, server):
    address = reply_address(issued_token(app, "reply", families.taro.id, families.message.id), DOMAIN)
    too_big = inbound_mail(address, files=[("big.pdf", PDF + b"0" * app.config["mta"]["inbound_max_bytes"],
                                            "application", "pdf")])
    with _smtp(server) as client:
        client.esmtp_features.pop("size", None)      # do not declare it: the server must stop it at DATA
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("taro@example.jp", [address], too_big)
    assert refused.value.smtp_code == 552
    assert "1MB" in refused.value.smtp_error.decode() and "大きすぎます" in refused.value.smtp_error.decode()
    with _smtp(server) as client:      # just over a reply's 1 MB of files, under the SMTP limit: also 552
        with pytest.raises(smtplib.SMTPDataError) as files_too_big:
            files = [("a.pdf", PDF + b"0" * 1024 * 1024, "application", "pdf")]
            client.sendmail("taro@example.jp", [address], inbound_mail(address, files=files))
    assert files_too_big.value.smtp_code == 552 and "MBまで" in files_too_big.value.smtp_error.decode()
    with _smtp(server) as client:      # declared with SIZE=: refused at MAIL, in Japanese too
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            client.sendmail("taro@example.jp", [address], too_big)
    assert declared.value.smtp_code == 552 and "大きすぎます" in declared.value.smtp_error.decode()
    assert Reply.select().count() == 0


def test_relaying_and_unknown_addresses_are_refused_at_rcpt(server):
    with _smtp(server) as client:
        client.mail("spammer@example.org")
        assert client.rcpt("victim@example.com")[0] == 550
        assert client.rcpt(f"nobody@{DOMAIN}")[0] == 550


def test_one_recipient_per_transaction(app, families, server):
    delivery = Delivery.select().first()
    with _smtp(server) as client:
        client.mail("")
        assert client.rcpt(f"b-{delivery.id}@{DOMAIN}")[0] == 250
        assert client.rcpt(f"b-{delivery.id}@{DOMAIN}")[0] == 452


def test_an_empty_mail_calls_the_injected_registration(server, entries):
    empty = inbound_mail(f"entry-GOOD1234@{DOMAIN}", None, sender="taro@docomo.ne.jp", subject="")
    with _smtp(server) as client:
        client.sendmail("taro@docomo.ne.jp", [f"entry-GOOD1234@{DOMAIN}"], empty)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("taro@docomo.ne.jp", [f"entry-WRONG999@{DOMAIN}"], empty)
    assert entries == [("GOOD1234", "taro@docomo.ne.jp")]
    assert refused.value.smtp_code == 550 and "登録コード" in refused.value.smtp_error.decode()


def test_unsubscribe_by_mail_stops_routine_mail_and_a_bad_token_gets_a_550_in_both_languages(app, families, server):
    token = issued_token(app, "unsubscribe", families.taro.id, families.message.id)
    to = f"unsubscribe@{DOMAIN}"
    with _smtp(server) as client:
        client.sendmail("taro@example.jp", [to], inbound_mail(to, None, subject=token))
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("taro@example.jp", [to], inbound_mail(to, "", subject="stop"))
    assert Guardian.get_by_id(families.taro.id).routine_mail is False
    assert Guardian.get_by_id(families.hanako.id).routine_mail is True
    text = refused.value.smtp_error.decode()
    assert refused.value.smtp_code == 550 and "unsubscribe code" in text and "配信停止" in text


def test_smuggled_second_message_is_neither_ended_early_nor_stored(app, families, server):
    """SMTP smuggling: <LF>.<LF> does not end DATA, and the message carrying it is refused whole."""
    address = reply_address(issued_token(app, "reply", families.taro.id, families.message.id), DOMAIN)
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        stream = sock.makefile("rwb")

        def say(line: bytes) -> bytes:
            stream.write(line)
            stream.flush()
            reply = stream.readline()
            while reply[3:4] == b"-":
                reply = stream.readline()
            return reply

        assert stream.readline().startswith(b"220")
        assert say(b"EHLO client.example.org\r\n").startswith(b"250")
        assert say(b"MAIL FROM:<taro@example.jp>\r\n").startswith(b"250")
        assert say(f"RCPT TO:<{address}>\r\n".encode()).startswith(b"250")
        assert say(b"DATA\r\n").startswith(b"354")
        smuggled = (b"Subject: hi\r\n\r\nhello\n.\nMAIL FROM:<x@example.org>\nRCPT TO:<" + address.encode()
                    + b">\nDATA\nforged\r\n.\r\n")
        assert say(smuggled).startswith(b"550")
        assert say(b"QUIT\r\n").startswith(b"221")
    assert Reply.select().count() == 0


def test_too_many_connections_from_one_client_get_421(app, server):
    limit = app.config["mta"]["inbound_max_connections"]
    open_ = [_smtp(server) for _ in range(limit)]
    try:
        with socket.create_connection(("127.0.0.1", server), timeout=10) as extra:
            assert extra.recv(100).startswith(b"421")
    finally:
        for client in open_:
            client.close()
    with _smtp(server) as client:      # freed again
        assert client.noop()[0] == 250


def test_an_enquiry_by_mail_reaches_the_operators_desk_and_no_school(app, server, signed_in):
    mail = inbound_mail(f"help@{DOMAIN}", "空メールを送っても返事が来ません。3年1組 山田 一郎の母です。",
                        sender="山田 花子 <hanako.help@example.jp>", subject="登録できません")
    with _smtp(server) as client:
        client.sendmail("hanako.help@example.jp", [f"help@{DOMAIN}"], mail)
    operator = signed_in("op")
    listed = operator.get("/admin/enquiries").get_data(as_text=True)
    assert "山田 花子" in listed and "空メールを送っても" in listed and "hanako.help@" not in listed
    [enquiry] = Enquiry.select()
    assert "hanako.help@example.jp" in operator.get(f"/admin/enquiries/{enquiry.id}").get_data(as_text=True)
    assert signed_in("admin-a").get("/admin/enquiries").status_code in (403, 404)
