"""Guardian pages: the read link, answers and replies, files, scoping, CSRF, rate limit, size, the portal."""
import json
import re


from appliance import contacts
from appliance.models import Attachment, ContactPoint, Message, Receipt, Reply, SurveyAnswer
from tests.conftest import csrf_token
from tests.unit.guardian_fixtures import PNG, form_token, mailed_link, make_families, signed_in_guardian


def test_one_tap_records_the_read_and_shows_a_light_strict_page(app, client, families):
    path = families.link(app, families.taro)
    for _ in range(3):
        response = client.get(path)
        assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "遠足のお知らせ" in page and "持ち物: 弁当、水筒" in page and "山田 太郎 様" in page
    assert Receipt.select().count() == 1
    assert len(response.data) < 30 * 1024
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert '<link rel="icon" href="data:,">' in page        # no /favicon.ico asked for with each tap
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "private" in response.headers["Cache-Control"] and "set-cookie" not in response.headers
    assert "<script" not in page          # reading and answering need no JavaScript


def test_unknown_links_are_404_and_guessing_is_stopped_for_every_worker(app, web, client, families):
    assert client.get("/r/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    for _ in range(60):
        client.get("/r/BBBBBBBBBBBBBBBBBBBBBB")
    assert client.get(families.link(app, families.taro)).status_code == 429   # even a valid link
    fresh_worker = web.test_client()          # another process: the counter is in the data dir
    del app.limiter                           # a limiter of its own, with its own connections
    assert fresh_worker.get(families.link(app, families.taro)).status_code == 429
    other_client = web.test_client()
    assert other_client.get(families.link(app, families.taro),
                            environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200


def test_answering_and_changing_the_answer(app, client, families):
    path = families.link(app, families.taro)
    token = form_token(client.get(path).get_data(as_text=True))
    response = client.post(f"{path}/answers", data={"form_token": token, "q1": "出席", "q2": ["運動会", "遠足"]})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "回答を送信しました" in page and 'value="出席" checked' in page and "回答を変更する" in page
    assert client.post(f"{path}/answers", data={"form_token": token, "q1": "欠席"}).status_code == 303
    assert sorted(json.loads(a.value) if a.question.kind != "multiple" else "multi"
                  for a in SurveyAnswer.select()) == ["multi", "出席", "欠席"]


def test_a_refused_answer_shows_why_and_keeps_what_was_typed(app, client, families):
    path = families.link(app, families.taro)
    token = form_token(client.get(path).get_data(as_text=True))
    response = client.post(f"{path}/answers", data={"form_token": token, "q3": "<b>先生へ</b>", "q2": "遠足"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "この質問には回答が必要です" in page
    assert "&lt;b&gt;先生へ&lt;/b&gt;" in page and 'value="遠足" checked' in page
    assert SurveyAnswer.select().count() == 0


def test_posts_without_the_links_form_token_are_refused(app, client, families):
    path = families.link(app, families.taro)
    hanako_token = form_token(client.get(families.link(app, families.hanako)).get_data(as_text=True))
    assert client.post(f"{path}/answers", data={"q1": "出席"}).status_code == 400
    assert client.post(f"{path}/answers", data={"form_token": hanako_token, "q1": "出席"}).status_code == 400
    assert client.post(f"{path}/replies", data={"form_token": hanako_token, "body": "x"}).status_code == 400
    assert SurveyAnswer.select().count() == 0 and Reply.select().count() == 0


def test_a_reply_with_a_photo_and_who_may_download_it(app, client, families):
    path = families.link(app, families.taro)
    token = form_token(client.get(path).get_data(as_text=True))
    response = client.post(f"{path}/replies", data={"form_token": token, "body": "写真を送ります",
                                                    "file": (__import__("io").BytesIO(PNG), "IMG_0001.JPG")},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    [file_url] = re.findall(r'href="(/r/[^"]+/f/[^"]+)"', page)
    download = client.get(file_url)
    assert download.data == PNG and download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in download.headers[
        "Content-Security-Policy"]
    hanako = families.link(app, families.hanako)
    assert client.get(hanako + file_url[file_url.index("/f/"):]).status_code == 404
    assert "写真を送ります" not in client.get(hanako).get_data(as_text=True)


def test_uploads_are_capped_while_streaming_and_checked_by_content(app, client, families):
    path = families.link(app, families.taro)
    token = form_token(client.get(path).get_data(as_text=True))
    io = __import__("io")
    body = (b'--b\r\nContent-Disposition: form-data; name="form_token"\r\n\r\n' + token.encode()
            + b'\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n%PDF-'
            + b"0" * 1_200_000 + b"\r\n--b--\r\n")     # raw bytes: the test client would spool a dict to a file
    too_big = client.post(f"{path}/replies", data=body, content_type="multipart/form-data; boundary=b")
    assert too_big.status_code == 413
    html = client.post(f"{path}/replies", data={"form_token": token, "body": "本文は残る",
                                                "file": (io.BytesIO(b"<html><script>x</script>"), "a.png")},
                       content_type="multipart/form-data")
    assert html.status_code == 400 and "送れない種類" in html.get_data(as_text=True)
    assert "本文は残る" in html.get_data(as_text=True) and Reply.select().count() == 0


def test_attachments_download_with_safe_headers_and_only_through_their_message(app, client, families):
    attachment = Attachment.create(message=families.message, filename="お知らせ.pdf", content_type="application/pdf",
                                   size=9, data=b"%PDF-1.4\n")
    response = client.get(f"{families.link(app, families.taro)}/a/{attachment.id}")
    assert response.status_code == 200 and response.data == b"%PDF-1.4\n"
    assert "filename*=UTF-8''%E3%81%8A" in response.headers["Content-Disposition"]
    other = Message.create(school=families.school, subject="x", body="y", audience="all", send_at=app.clock.now(),
                           created_at=app.clock.now())
    from appliance.models import Recipient
    Recipient.create(message=other, guardian=families.taro)
    assert client.get(f"{families.link(app, families.taro, other)}/a/{attachment.id}").status_code == 404


def test_everything_shown_is_escaped(app, client):
    families = make_families(app)
    Message.update(subject="<script>alert(1)</script>").where(Message.id == families.message.id).execute()
    page = client.get(families.link(app, families.taro)).get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_page_is_in_the_guardians_language(app, client, families):
    from appliance import portal
    portal.set_preferences(app, families.taro.id, locale="en", quiet_from=None, quiet_until=None)
    response = client.get(families.link(app, families.taro))
    assert response.headers["Content-Language"] == "en" and "Survey" in response.get_data(as_text=True)


# --- the portal ------------------------------------------------------------------------------------

def test_sign_in_by_mailed_link_then_children_and_messages(app, web, families):
    guardian = signed_in_guardian(app, web)
    page = guardian.get("/p/").get_data(as_text=True)
    assert "山田 一郎" in page and "遠足のお知らせ" in page and "要回答" in page
    assert "佐藤 次郎" not in page and len(page.encode()) < 30 * 1024
    assert "マイページへのログイン" not in page         # system mail is not a message
    assert guardian.post("/p/signout", data={"form_token": form_token(page)}).status_code == 303
    assert guardian.get("/p/").status_code == 302


def test_the_sign_in_page_says_the_same_for_an_unknown_address(app, client, families):
    page = client.get("/p/signin").get_data(as_text=True)
    answer = client.post("/p/signin", data={"csrf_token": csrf_token(page), "address": "nobody@example.jp"})
    assert answer.status_code == 200 and "ログイン用のリンクを送りました" in answer.get_data(as_text=True)
    assert client.post("/p/signin", data={"address": "taro@example.jp"}).status_code == 400     # no CSRF token
    assert Message.select().where(Message.kind == "system").count() == 0


def test_staff_lists_ignore_system_mail(app, web, staff, signed_in):
    families = make_families(app)
    signed_in_guardian(app, web)
    page = signed_in("op").get(f"/admin/s/{families.school.code}/messages").get_data(as_text=True)
    assert "遠足のお知らせ" in page and "マイページへのログイン" not in page


def test_addresses_added_confirmed_by_mail_bouncing_shown_and_removed(app, web, families):
    guardian = signed_in_guardian(app, web)
    page = guardian.get("/p/addresses").get_data(as_text=True)
    assert "taro@example.jp" in page and "taro@docomo.ne.jp" in page
    token = form_token(page)
    assert guardian.post("/p/addresses", data={"form_token": token, "address": "new@example.jp"}).status_code == 303
    assert "確認待ち" in guardian.get("/p/addresses").get_data(as_text=True)
    link = mailed_link(app, "confirm", check_system_mail=True)
    confirm = guardian.get(link)
    assert guardian.post(link, data={"form_token": form_token(confirm.get_data(as_text=True))}).status_code == 200
    new = ContactPoint.get(ContactPoint.label == "", ContactPoint.status == "active",
                           ContactPoint.id.not_in([c.id for c in contacts.own_contacts(app, families.hanako.id, "email")]),
                           ContactPoint.confirmed_at == app.clock.now(), ContactPoint.position == 3)
    contacts.suspend([new.id])
    page = guardian.get("/p/addresses").get_data(as_text=True)
    assert "返送されています" in page and "迷惑メール設定" in page
    response = guardian.post(f"/p/addresses/{new.id}/remove", data={"form_token": token})
    assert response.status_code == 303 and ContactPoint.get_by_id(new.id).status == "removed"


def test_portal_posts_need_the_sign_in_form_token_and_reach_only_ones_own_rows(app, web, families):
    guardian = signed_in_guardian(app, web)
    [hanakos] = contacts.own_contacts(app, families.hanako.id, "email")
    token = form_token(guardian.get("/p/addresses").get_data(as_text=True))
    assert guardian.post("/p/addresses", data={"address": "x@example.jp"}).status_code == 400
    assert guardian.post(f"/p/addresses/{hanakos.id}/remove", data={"form_token": token}).status_code == 404
    assert ContactPoint.get_by_id(hanakos.id).status == "active"


def test_settings_language_and_quiet_hours(app, web, families):
    guardian = signed_in_guardian(app, web)
    token = form_token(guardian.get("/p/settings").get_data(as_text=True))
    refused = guardian.post("/p/settings", data={"form_token": token, "locale": "ja", "quiet_from": "21"})
    assert refused.status_code == 400
    saved = guardian.post("/p/settings", data={"form_token": token, "locale": "en", "quiet_from": "21",
                                               "quiet_until": "7"})
    assert saved.status_code == 303
    page = guardian.get(saved.headers["Location"])
    assert page.headers["Content-Language"] == "en" and 'value="21" selected' in page.get_data(as_text=True)


def test_devices_page_registers_a_subscription_and_removes_it(app, web, families):
    from appliance import push
    push.init_keys(app)
    guardian = signed_in_guardian(app, web)
    page = guardian.get("/p/devices").get_data(as_text=True)
    assert 'data-key="' in page and "guardian.js" in page
    subscription = json.dumps({"endpoint": "https://fcm.googleapis.com/fcm/send/abc",
                               "keys": {"p256dh": "B" * 87, "auth": "A" * 22}})
    token = form_token(page)
    assert guardian.post("/p/devices", data={"form_token": token, "subscription": subscription,
                                             "name": "母のスマホ"}).status_code == 303
    evil = json.dumps({"endpoint": "https://10.0.0.1/x", "keys": {"p256dh": "B" * 87, "auth": "A" * 22}})
    assert guardian.post("/p/devices", data={"form_token": token, "subscription": evil}).status_code == 400
    [device] = push.devices(app, families.taro.id)
    page = guardian.get("/p/devices").get_data(as_text=True)
    assert "母のスマホ" in page and "fcm.googleapis.com" not in page
    assert guardian.post(f"/p/devices/{device.id}/remove", data={"form_token": token}).status_code == 303
    assert push.devices(app, families.taro.id) == []


def test_pwa_manifest_and_service_worker(client):
    manifest = client.get("/p/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json" and json.loads(manifest.data)["start_url"] == "/p/"
    worker = client.get("/p/sw.js")
    assert worker.mimetype == "text/javascript" and b"notificationclick" in worker.data


def test_the_school_reads_replies_and_their_files_but_never_an_address(app, web, staff, signed_in):
    families = make_families(app)
    from appliance import replies
    reply = replies.record_reply(app, families.message.id, families.taro.id, "<b>よろしく</b>", [("a.png", PNG)])
    base = f"/admin/s/{families.school.code}/messages/{families.message.id}"
    operator = signed_in("op")
    page = operator.get(f"{base}/replies").get_data(as_text=True)
    assert "山田 太郎" in page and "&lt;b&gt;よろしく&lt;/b&gt;" in page and "example.jp" not in page
    [file] = reply.files
    download = operator.get(f"{base}/replies/files/{file.id}")
    assert download.data == PNG and download.headers["X-Content-Type-Options"] == "nosniff"
    assert signed_in("admin-b").get(f"{base}/replies").status_code == 404
