"""Notice templates: the notices staff start from (臨時休校, 引き渡し, 不審者情報 ...).

Every new school gets DEFAULTS to edit; each school keeps its own copies.
"""
from __future__ import annotations

from appliance import audit, db
from appliance.errors import InvalidInput, NotFound
from appliance.messages import check_text
from appliance.models import NoticeTemplate, School
from appliance.models.message import PRIORITIES

MAX_NAME = 50

# (name, subject, body, priority): written to be sent after filling in the 〇〇.
DEFAULTS = [
    ("臨時休校", "【臨時休校】〇月〇日（〇）は臨時休校とします",
     "保護者の皆様\n\n〇〇のため、〇月〇日（〇）は臨時休校とします。\n"
     "お子様はご家庭で安全に過ごすようお願いします。\n"
     "今後の予定は決まり次第お知らせします。", "emergency"),
    ("引き渡し", "【お迎えのお願い】児童の引き渡しを行います",
     "保護者の皆様\n\n〇〇のため、本日〇時から児童の引き渡しを行います。\n"
     "引き渡しカードをお持ちのうえ、〇〇（場所）までお迎えをお願いします。\n"
     "お迎えまでお子様は学校で安全に待機させます。", "emergency"),
    ("不審者情報", "【不審者情報】下校時の安全確保のお願い",
     "保護者の皆様\n\n本日〇時ごろ、〇〇付近で不審者の目撃情報がありました。\n"
     "特徴: 〇〇\n"
     "下校時は複数で帰るよう指導しています。ご家庭でも声かけをお願いします。", "emergency"),
    ("学級閉鎖", "【学級閉鎖】〇年〇組を学級閉鎖とします",
     "〇年〇組の保護者の皆様\n\n感染症による欠席者が増えたため、〇月〇日（〇）から〇月〇日（〇）まで"
     "〇年〇組を学級閉鎖とします。\n期間中は外出を控え、体調管理にご留意ください。", "normal"),
    ("登校時刻の変更", "【登校時刻の変更】〇月〇日（〇）の登校について",
     "保護者の皆様\n\n〇〇のため、〇月〇日（〇）は登校時刻を〇時〇分に遅らせます。\n"
     "それまではご家庭で待機させてください。", "normal"),
    ("行事の延期", "【行事の延期】〇〇を延期します",
     "保護者の皆様\n\n〇月〇日（〇）に予定していた〇〇は、〇〇のため延期します。\n"
     "延期後の日程は〇月〇日（〇）です。", "normal"),
]


def seed_defaults(app, school: School) -> None:
    """Give a new school the default templates (inside the caller's transaction when there is one)."""
    now = app.clock.now()
    with db.write():
        NoticeTemplate.insert_many([
            {"id": NoticeTemplate.id.default(), "school": school.id, "name": name, "subject": subject,
             "body": body, "priority": priority, "updated_at": now}
            for name, subject, body, priority in DEFAULTS]).execute()


def list_templates(school: School) -> list[NoticeTemplate]:
    """Return the school's templates by name."""
    return list(NoticeTemplate.select().where(NoticeTemplate.school == school).order_by(NoticeTemplate.name))


def get_template(school: School, template_id: str) -> NoticeTemplate:
    """Return one of the school's templates, or raise NotFound (another school's too)."""
    template = NoticeTemplate.get_or_none((NoticeTemplate.id == template_id) & (NoticeTemplate.school == school))
    if template is None:
        raise NotFound("ひな形が見つかりません")
    return template


def add_template(app, school: School, *, name: str, subject: str, body: str, priority: str = "normal",
                 actor: str) -> NoticeTemplate:
    """Create a template; names are unique within a school."""
    name, subject, body = _checked(name, subject, body, priority)
    with db.write():
        _check_name_free(school, name, None)
        template = NoticeTemplate.create(school=school, name=name, subject=subject, body=body, priority=priority,
                                         updated_at=app.clock.now())
        audit.record(app, actor, "template.add", school_id=school.id, subject_id=template.id, detail={"name": name})
    return template


def update_template(app, template: NoticeTemplate, *, name: str, subject: str, body: str, priority: str,
                    actor: str) -> NoticeTemplate:
    """Change a template's name, subject, body and priority."""
    name, subject, body = _checked(name, subject, body, priority)
    with db.write():
        _check_name_free(template.school, name, template.id)
        NoticeTemplate.update(name=name, subject=subject, body=body, priority=priority,
                              updated_at=app.clock.now()).where(NoticeTemplate.id == template.id).execute()
        audit.record(app, actor, "template.update", school_id=template.school_id, subject_id=template.id,
                     detail={"name": name})
    return NoticeTemplate.get_by_id(template.id)


def delete_template(app, template: NoticeTemplate, *, actor: str) -> None:
    """Remove a template (messages written from it keep their text)."""
    with db.write():
        NoticeTemplate.delete().where(NoticeTemplate.id == template.id).execute()
        audit.record(app, actor, "template.delete", school_id=template.school_id, subject_id=template.id,
                     detail={"name": template.name})


def _checked(name: str, subject: str, body: str, priority: str) -> tuple[str, str, str]:
    name = name.strip()
    if not name:
        raise InvalidInput("ひな形の名前が空です")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"ひな形の名前は{MAX_NAME}文字までです")
    if priority not in PRIORITIES:
        raise InvalidInput(f"優先度は {', '.join(PRIORITIES)} のいずれかです: {priority!r}")
    subject, body = subject.strip(), body.rstrip()
    check_text(subject, body)     # a message's limits: a template always makes a valid draft
    return name, subject, body


def _check_name_free(school: School, name: str, own_id: str | None) -> None:
    clash = NoticeTemplate.select().where((NoticeTemplate.school == school) & (NoticeTemplate.name == name))
    if own_id is not None:
        clash = clash.where(NoticeTemplate.id != own_id)
    if clash.exists():
        raise InvalidInput(f"ひな形「{name}」はすでにあります")
