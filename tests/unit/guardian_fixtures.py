"""A school with two families and a message with a survey, and the guardian pages' helpers (form tokens,
mailed links, a portal session), shared by the guardian-side tests."""
from dataclasses import dataclass
from email import message_from_bytes, policy

from appliance import coconet, tokens
from appliance.guardians import add_guardian
from appliance.messages import Question, create_message
from appliance.models import Guardian, Message
from appliance.schools import add_school
from tests.conftest import add_students, csrf_token, hidden
from tests.unit.mta_fakes import FakeConnector, deliver

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n" + b"0" * 64
QUESTIONS = [Question("single", "出席しますか", ("出席", "欠席"), required=True),
             Question("multiple", "参加する行事", ("運動会", "音楽会", "遠足")),
             Question("text", "連絡事項")]


@dataclass
class Families:
    school: object
    taro: Guardian          # two children, two addresses
    hanako: Guardian        # one child, one address
    message: Message

    def link(self, app, guardian, message=None) -> str:
        """The path of a guardian's read link for the message."""
        return f"/r/{issued_token(app, 'read', guardian.id, (message or self.message).id)}"

    def open_earthquake(self, app):
        """An earthquake event opened at the families' school (CoCo-net on), without a first notice."""
        return coconet.open_event(app, self.school, kind="earthquake", title="地震", body="体育館で待機しています。",
                                  send_notice=False, actor="test")


def make_families(app, **message_options) -> Families:
    school = add_school(app, "s1", "さくら小学校")
    kids = add_students(app, school, [(3, "1", 1, "山田 一郎"), (1, "1", 4, "山田 花子"), (2, "1", 7, "佐藤 次郎")])
    taro = add_guardian(app, "山田 太郎", student_ids=[kids[0].id, kids[1].id],
                        emails=["taro@example.jp", "taro@docomo.ne.jp"], approved=True)
    hanako = add_guardian(app, "佐藤 花子", student_ids=[kids[2].id], emails=["hanako@example.jp"], approved=True)
    options = {"questions": QUESTIONS, "reply_needed": True, **message_options}
    message = create_message(app, school, audience="all", subject="遠足のお知らせ", body="持ち物: 弁当、水筒", **options)
    return Families(school, taro, hanako, message)


def issued_token(app, scope: str, guardian_id: str, message_id: str | None) -> str:
    """The token of a guardian's link of the scope for a message (tokens are derived: the mailed one)."""
    pair = (guardian_id, message_id)
    return tokens.issue_tokens(app, scope, [pair])[pair]


def coconet_path(app, guardian_id: str) -> str:
    """The path of a guardian's CoCo-net link (the mailed and printed one: tokens are derived)."""
    return f"/{tokens.PATHS['coconet']}/{issued_token(app, 'coconet', guardian_id, None)}"


def form_token(page: str) -> str:
    """The form token a guardian page's form carries (the link's or the portal session's)."""
    return hidden(page, "form_token")


def mailed_link(app, scope: str, check_system_mail: bool = False) -> str:
    """Deliver due mail through the MTA with a fake connector; return the path of the newest link of the scope.
    check_system_mail: assert that every mail carrying one has no List-Unsubscribe and no read report."""
    sink = FakeConnector()
    deliver(app, sink)
    mails = [message_from_bytes(data, policy=policy.default) for _, _, data in sink.sent]
    path = f"/{tokens.PATHS[scope]}/"
    links = []
    for mail in mails:
        text = mail.get_body(("plain",)).get_content()
        found = [line for line in text.splitlines() if path in line]
        if found and check_system_mail:
            assert "List-Unsubscribe" not in mail and "読みました" not in text
        links += found
    return links[-1][links[-1].index(path):]


def signed_in_guardian(app, web, address="taro@example.jp"):
    """A client signed in to the portal by the mailed link, as the address's guardian."""
    guardian = web.test_client()
    page = guardian.get("/p/signin").get_data(as_text=True)
    sent = guardian.post("/p/signin", data={"csrf_token": csrf_token(page), "address": address})
    assert sent.status_code == 200 and "ログイン用のリンクを送りました" in sent.get_data(as_text=True)
    link = mailed_link(app, "signin", check_system_mail=True)
    button = guardian.get(link).get_data(as_text=True)
    signed = guardian.post(link, data={"form_token": form_token(button)})
    assert signed.status_code == 303 and "renraku_guardian=" in signed.headers["Set-Cookie"]
    assert "Path=/p" in signed.headers["Set-Cookie"] and "HttpOnly" in signed.headers["Set-Cookie"]
    assert guardian.post(link, data={"form_token": form_token(button)}).status_code == 404   # once
    return guardian
