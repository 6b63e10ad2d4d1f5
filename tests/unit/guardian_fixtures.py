"""A school with two families and a message with a survey, shared by the guardian-side tests."""
from dataclasses import dataclass

from appliance import db, tokens
from appliance.guardians import add_guardian
from appliance.messages import Question, create_message
from appliance.models import Guardian, Message, Student
from appliance.schools import add_school

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
        message = message or self.message
        token = tokens.issue_tokens(app, "read", [(guardian.id, message.id)])[(guardian.id, message.id)]
        return f"/r/{token}"


def make_families(app, **message_options) -> Families:
    school = add_school(app, "s1", "さくら小学校")
    now = app.clock.now()
    with db.write():
        kids = [Student.create(school=school, grade=grade, class_name="1", number=number, name=name,
                               created_at=now, updated_at=now)
                for grade, number, name in [(3, 1, "山田 一郎"), (1, 4, "山田 花子"), (2, 7, "佐藤 次郎")]]
    taro = add_guardian(app, "山田 太郎", student_ids=[kids[0].id, kids[1].id],
                        emails=["taro@example.jp", "taro@docomo.ne.jp"], approved=True)
    hanako = add_guardian(app, "佐藤 花子", student_ids=[kids[2].id], emails=["hanako@example.jp"], approved=True)
    options = {"questions": QUESTIONS, "reply_needed": True, **message_options}
    message = create_message(app, school, audience="all", subject="遠足のお知らせ", body="持ち物: 弁当、水筒", **options)
    return Families(school, taro, hanako, message)
