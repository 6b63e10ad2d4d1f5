"""Notice templates: defaults for every new school, kept per school, edited by school admins."""
import pytest

from appliance import notice_templates
from appliance.errors import InvalidInput, NotFound
from appliance.models import NoticeTemplate


def test_a_new_school_gets_the_default_templates(staff):
    names = [t.name for t in notice_templates.list_templates(staff.school)]
    assert {"臨時休校", "引き渡し", "不審者情報", "学級閉鎖"} <= set(names)
    assert len(names) == len(notice_templates.DEFAULTS)
    assert NoticeTemplate.select().where(NoticeTemplate.school == staff.other_school).count() == len(names)


def test_templates_are_added_changed_and_removed(app, staff):
    template = notice_templates.add_template(app, staff.school, name="遠足", subject="遠足のお知らせ",
                                             body="持ち物: 弁当", actor="admin-a")
    with pytest.raises(InvalidInput, match="すでにあります"):
        notice_templates.add_template(app, staff.school, name="遠足", subject="s", body="b", actor="admin-a")
    changed = notice_templates.update_template(app, template, name="遠足（春）", subject="春の遠足", body="雨天中止",
                                               priority="emergency", actor="admin-a")
    assert (changed.name, changed.subject, changed.priority) == ("遠足（春）", "春の遠足", "emergency")
    notice_templates.delete_template(app, changed, actor="admin-a")
    with pytest.raises(NotFound):
        notice_templates.get_template(staff.school, template.id)


def test_another_schools_template_is_not_found(staff):
    theirs = notice_templates.list_templates(staff.other_school)[0]
    with pytest.raises(NotFound):
        notice_templates.get_template(staff.school, theirs.id)


@pytest.mark.parametrize("fields, message", [
    ({"name": " "}, "名前が空"),
    ({"subject": ""}, "件名が空"),
    ({"subject": "a\nb"}, "改行"),
    ({"priority": "high"}, "優先度"),
])
def test_invalid_templates_are_refused(app, staff, fields, message):
    with pytest.raises(InvalidInput, match=message):
        notice_templates.add_template(app, staff.school, actor="admin-a",
                                      **({"name": "n", "subject": "s", "body": "b", "priority": "normal"} | fields))


def test_admins_edit_templates_through_the_pages_and_teachers_use_them(signed_in, staff):
    admin = signed_in("admin-a")
    response = admin.post_form("/admin/s/sch-a/templates/new", {"name": "<script>x</script>", "subject": "件名",
                                                                "body": "本文", "priority": "normal"})
    assert response.status_code == 302
    page = admin.get("/admin/s/sch-a/templates").get_data(as_text=True)
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
    template = NoticeTemplate.get(NoticeTemplate.name == "<script>x</script>")
    assert admin.post_form(f"/admin/s/sch-a/templates/{template.id}/edit", {
        "name": "n2", "subject": "件名2", "body": "本文2", "priority": "emergency"}).status_code == 302
    assert NoticeTemplate.get_by_id(template.id).priority == "emergency"
    bad = admin.post_form(f"/admin/s/sch-a/templates/{template.id}/edit", {"name": "n3", "subject": "", "body": "本文3"})
    assert bad.status_code == 400 and "本文3" in bad.get_data(as_text=True)

    teacher = signed_in("teacher-a")
    page = teacher.get("/admin/s/sch-a/templates").get_data(as_text=True)
    assert f"/admin/s/sch-a/messages/new?template={template.id}" in page and "/edit" not in page
    assert teacher.get(f"/admin/s/sch-a/templates/{template.id}/edit").status_code == 403
    assert teacher.post_form(f"/admin/s/sch-a/templates/{template.id}/delete").status_code == 403
    form = teacher.get(f"/admin/s/sch-a/messages/new?template={template.id}").get_data(as_text=True)
    assert "件名2" in form and "本文2" in form

    assert admin.post_form(f"/admin/s/sch-a/templates/{template.id}/delete").status_code == 302
    assert not NoticeTemplate.select().where(NoticeTemplate.id == template.id).exists()


def test_another_schools_template_pages_answer_404(signed_in, staff):
    theirs = notice_templates.list_templates(staff.other_school)[0]
    admin = signed_in("admin-a")
    assert admin.get(f"/admin/s/sch-a/templates/{theirs.id}/edit").status_code == 404
    assert admin.get(f"/admin/s/sch-a/messages/new?template={theirs.id}").status_code == 404
    assert admin.post_form(f"/admin/s/sch-a/templates/{theirs.id}/delete").status_code == 404
