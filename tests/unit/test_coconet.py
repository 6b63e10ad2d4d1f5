"""CoCo-net's core: events, states (one, bulk), pickups, notices, the guardian's view, checks, the dashboard."""
from dataclasses import dataclass
from datetime import timedelta

import pytest
from unittest.mock import ANY

from appliance import coconet, contacts, db, guardians, tokens
from appliance.errors import InvalidInput, NotFound
from appliance.models import (AuditEntry, CoconetCheck, CoconetState, Delivery, Message, Student)
from appliance.models.base import FACTS, OWNED
from appliance.models.coconet import CoconetEvent, CoconetNotice, CoconetPickup
from appliance.sample_data import ADDRESS_MARKER
from appliance.schools import add_school
from tests.unit.guardian_fixtures import issued_token


@dataclass
class Families:
    school: object
    other: object          # another school, with its own child and guardian
    kids: dict             # name -> Student
    g: dict                # name -> Guardian


@pytest.fixture
def fam(app):
    """3-1: aoi, ren, sora; 3-2: hana. g1 (aoi and her sister hana, email), g2 (ren, email),
    g3 (ren too, no contact), g4 (aoi, pending link); sora has no guardian. Other school: kai with g5."""
    school, other = add_school(app, "A", "第一小学校"), add_school(app, "B", "第二小学校")
    now = app.clock.now()
    with db.write():
        kids = {name: Student.create(school=sch, grade=3, class_name=cls, number=n, name=name,
                                     created_at=now, updated_at=now)
                for name, sch, cls, n in [("aoi", school, "1", 1), ("ren", school, "1", 2), ("sora", school, "1", 3),
                                          ("hana", school, "2", 1), ("kai", other, "1", 1)]}
    g = {
        "g1": guardians.add_guardian(app, "保護者1", student_ids=[kids["aoi"].id, kids["hana"].id],
                                     emails=["one.rk0000001@example.jp"], approved=True),
        "g2": guardians.add_guardian(app, "保護者2", student_ids=[kids["ren"].id],
                                     emails=["two.rk0000002@example.jp"], approved=True),
        "g3": guardians.add_guardian(app, "保護者3", student_ids=[kids["ren"].id], approved=True),
        "g4": guardians.add_guardian(app, "保護者4", student_ids=[kids["aoi"].id], emails=["x.rk0000004@example.jp"]),
        "g5": guardians.add_guardian(app, "保護者5", student_ids=[kids["kai"].id],
                                     emails=["five.rk0000005@example.jp"], approved=True),
    }
    return Families(school, other, kids, g)


def open_(app, school, **kw):
    fields = {"kind": "earthquake", "title": "地震発生", "body": "震度6弱。児童は校庭に避難しています。",
              "actor": "admin-a"} | kw
    return coconet.open_event(app, school, **fields)


def state_of(event, student):
    return coconet.current_states(event.id)[student.id]


def test_models_declare_owned_events_and_facts_for_what_happens_during_one():
    assert CoconetEvent._meta.replication == OWNED
    for model in (CoconetState, CoconetPickup, CoconetNotice, CoconetCheck):
        assert model._meta.replication == FACTS


def test_opening_an_event_sends_an_emergency_notice_on_every_channel_and_posts_it(app, fam):
    event = open_(app, fam.school)
    assert coconet.current_event(fam.school) == event
    message = Message.get_by_id(event.message_id)
    assert message.priority == "emergency" and message.channel_list == ["email", "push", "phone", "fax"]
    assert coconet.FIRST_NOTICE in message.body and message.subject == "地震発生"
    assert Delivery.select().where(Delivery.message == message).count() == 2     # g1 and g2's addresses
    assert [n.body for n in coconet.event_notices(event)] == ["震度6弱。児童は校庭に避難しています。"]
    assert AuditEntry.get(AuditEntry.action == "coconet.open").subject_id == event.id


def test_an_event_can_open_without_a_message_and_only_one_at_a_time(app, fam):
    event = open_(app, fam.school, send_notice=False, body="")
    assert event.message_id is None and coconet.event_notices(event) == []
    with pytest.raises(InvalidInput, match="すでに"):
        open_(app, fam.school)
    with pytest.raises(InvalidInput):
        open_(app, fam.school, kind="meteor")


def test_a_closed_event_keeps_its_record_and_takes_nothing_more(app, fam, clock):
    event = open_(app, fam.school, send_notice=False)
    coconet.set_states(app, event, [fam.kids["aoi"]], "protected", place="体育館", actor="teacher-a")
    clock.advance(hours=5)
    coconet.close_event(app, event, actor="admin-a")
    assert coconet.current_event(fam.school) is None
    assert state_of(event, fam.kids["aoi"]).place == "体育館"
    with pytest.raises(InvalidInput, match="終了"):
        coconet.set_states(app, event, [fam.kids["aoi"]], "unknown", actor="teacher-a")
    with pytest.raises(InvalidInput, match="終了"):
        coconet.post_notice(app, event, "追加", actor="admin-a")
    assert coconet.school_events(fam.school) == [event]
    assert open_(app, fam.school, send_notice=False) != event      # a new event may open after closing


def test_the_current_state_is_the_newest_fact_and_the_history_is_kept(app, fam, clock):
    event = open_(app, fam.school, send_notice=False)
    aoi = fam.kids["aoi"]
    assert coconet.current_states(event.id) == {}
    coconet.set_states(app, event, [aoi], "unknown", actor="teacher-a")
    clock.advance(minutes=3)
    coconet.set_states(app, event, [aoi], "protected", place="体育館", note="けがなし", actor="teacher-a")
    assert state_of(event, aoi) == coconet.ChildState("protected", "体育館", "けがなし", "teacher-a", clock.now())
    history = coconet.student_history(event, aoi)
    assert [s.state for s in history] == ["protected", "unknown"] and {s.site for s in history} == {app.site}


def test_a_whole_class_is_set_in_one_action(app, fam):
    event = open_(app, fam.school, send_notice=False)
    assert coconet.set_class_state(app, event, 3, "1", "protected", place="体育館", actor="teacher-a") == 3
    states = coconet.current_states(event.id)
    assert {fam.kids[n].id for n in ("aoi", "ren", "sora")} == set(states)
    assert {s.place for s in states.values()} == {"体育館"}
    with pytest.raises(NotFound):
        coconet.set_class_state(app, event, 3, "9", "protected", actor="teacher-a")


@pytest.mark.parametrize("state, place, message", [
    ("lost", "", "状態が不明"), ("evacuated", "", "避難先"), ("handed_over", "", "引き渡し"),
    ("protected", "あ" * 41, "40文字")])
def test_bad_states_are_refused(app, fam, state, place, message):
    event = open_(app, fam.school, send_notice=False)
    with pytest.raises(InvalidInput, match=message):
        coconet.set_states(app, event, [fam.kids["aoi"]], state, place=place, actor="teacher-a")
    assert CoconetState.select().count() == 0


def test_another_schools_child_cannot_be_set(app, fam):
    event = open_(app, fam.school, send_notice=False)
    with pytest.raises(NotFound):
        coconet.set_states(app, event, [fam.kids["kai"]], "protected", actor="teacher-a")
    with pytest.raises(NotFound):
        coconet.find_student(fam.school, fam.kids["kai"].id)
    with pytest.raises(NotFound):
        coconet.find_students(fam.school, [fam.kids["aoi"].id, fam.kids["kai"].id])


def test_a_pickup_by_a_registered_guardian_hands_the_child_over(app, fam, clock):
    event = open_(app, fam.school, send_notice=False)
    ren = fam.kids["ren"]
    assert {g.name for g in coconet.guardians_of(ren)} == {"保護者2", "保護者3"}
    collected = clock.now() - timedelta(minutes=10)
    pickup = coconet.record_pickup(app, event, ren, guardian_id=fam.g["g3"].id, collected_at=collected,
                                   actor="teacher-a")
    assert state_of(event, ren).state == "handed_over"
    assert coconet.latest_pickups(event.id)[ren.id] == coconet.Pickup("保護者3", "", collected)
    [logged] = coconet.pickup_register(event)
    assert logged.id == pickup.id and logged.student.name == "ren"


def test_a_pickup_by_another_named_adult_is_logged(app, fam):
    event = open_(app, fam.school, send_notice=False)
    coconet.record_pickup(app, event, fam.kids["sora"], adult_name="祖母 山田花子", note="身分証確認",
                          actor="teacher-a")
    assert coconet.latest_pickups(event.id)[fam.kids["sora"].id] == coconet.Pickup("祖母 山田花子", "身分証確認", ANY)


@pytest.mark.parametrize("who", ["g4", "g5", "none"])
def test_a_pickup_needs_a_registered_guardian_of_the_child_or_a_name(app, fam, who):
    event = open_(app, fam.school, send_notice=False)
    with pytest.raises(InvalidInput):
        coconet.record_pickup(app, event, fam.kids["aoi"], guardian_id=None if who == "none" else fam.g[who].id,
                              actor="teacher-a")
    assert CoconetPickup.select().count() == 0 and CoconetState.select().count() == 0


def test_a_pickup_time_in_the_future_is_refused(app, fam, clock):
    event = open_(app, fam.school, send_notice=False)
    with pytest.raises(InvalidInput, match="未来"):
        coconet.record_pickup(app, event, fam.kids["aoi"], guardian_id=fam.g["g1"].id,
                              collected_at=clock.now() + timedelta(hours=1), actor="teacher-a")


def test_notices_are_newest_first_and_limited_in_length(app, fam, clock):
    event = open_(app, fam.school, send_notice=False, body="")
    for text in ("第1報", "第2報"):
        coconet.post_notice(app, event, text, actor="admin-a")
        clock.advance(minutes=1)
    assert [n.body for n in coconet.event_notices(event)] == ["第2報", "第1報"]
    with pytest.raises(InvalidInput):
        coconet.post_notice(app, event, "あ" * (coconet.MAX_NOTICE + 1), actor="admin-a")
    with pytest.raises(InvalidInput):
        coconet.post_notice(app, event, "  ", actor="admin-a")


def view_of(app, guardian_id: str) -> coconet.GuardianView:
    """What the guardian's CoCo-net link shows."""
    return coconet.link_view(app, issued_token(app, "coconet", guardian_id, None))


def test_a_guardian_sees_only_their_own_approved_children_and_the_notices(app, fam):
    event = open_(app, fam.school)
    open_(app, fam.other, title="B校の地震")
    coconet.set_class_state(app, event, 3, "1", "protected", place="体育館", actor="teacher-a")
    one = view_of(app, fam.g["g1"].id)
    [shown] = one.events
    assert shown.event_id == event.id and shown.school_name == "第一小学校"
    assert [c.name for c in shown.children] == ["aoi", "hana"]
    assert {c.name: (c.state.state if c.state else None) for c in shown.children} == {"aoi": "protected", "hana": None}
    assert [n.body for n in shown.notices] == ["震度6弱。児童は校庭に避難しています。"]
    two = view_of(app, fam.g["g2"].id)
    assert [c.name for c in two.events[0].children] == ["ren"]
    assert view_of(app, fam.g["g4"].id).events == ()          # a pending link shows nothing
    assert [e.school_name for e in view_of(app, fam.g["g5"].id).events] == ["第二小学校"]


def test_a_child_handed_over_shows_who_collected_them(app, fam):
    event = open_(app, fam.school)
    coconet.set_class_state(app, event, 3, "1", "protected", place="体育館", actor="teacher-a")
    coconet.record_pickup(app, event, fam.kids["aoi"], guardian_id=fam.g["g1"].id, actor="teacher-a")
    [shown] = view_of(app, fam.g["g1"].id).events
    aoi, hana = shown.children
    assert aoi.name == "aoi" and aoi.state.state == "handed_over" and aoi.pickup.collector == "保護者1"
    assert hana.state is None and hana.pickup is None


def test_children_in_two_schools_show_under_each_schools_open_event_newest_first(app, fam, clock):
    first = open_(app, fam.school, send_notice=False)
    clock.advance(minutes=5)
    second = open_(app, fam.other, send_notice=False, title="B校の地震")
    both = guardians.add_guardian(app, "保護者6", student_ids=[fam.kids["aoi"].id, fam.kids["kai"].id],
                                  emails=["six.rk0000006@example.jp"], approved=True)
    view = view_of(app, both.id)
    assert [(ev.event_id, [c.name for c in ev.children]) for ev in view.events] == [(second.id, ["kai"]),
                                                                                     (first.id, ["aoi"])]


def test_a_child_who_left_and_a_guardian_without_children_show_no_event(app, fam):
    open_(app, fam.school)
    with db.write():
        Student.update(status="transferred_out").where(Student.id == fam.kids["ren"].id).execute()
    alone = guardians.add_guardian(app, "保護者7", student_ids=[], emails=["seven.rk0000007@example.jp"], approved=True)
    assert view_of(app, fam.g["g2"].id).events == () and view_of(app, alone.id).guardian_name == "保護者7"
    assert view_of(app, alone.id).events == ()


def test_only_a_live_coconet_link_gives_a_view(app, fam, clock):
    open_(app, fam.school)
    token = issued_token(app, "coconet", fam.g["g1"].id, None)
    other_scope = issued_token(app, "unsubscribe", fam.g["g1"].id, None)
    assert coconet.link_view(app, token).guardian_id == fam.g["g1"].id
    for wrong in (other_scope, token[:-2], "あ" * 10, "x" * 1000, ""):
        assert coconet.link_view(app, wrong) is None
    clock.advance(days=401)                                            # a link lasts 400 days
    assert coconet.link_view(app, token) is None


def test_without_an_open_event_the_guardian_sees_no_child(app, fam):
    event = open_(app, fam.school, send_notice=False)
    coconet.close_event(app, event, actor="admin-a")
    assert view_of(app, fam.g["g1"].id).events == ()


def test_the_guardian_page_shows_only_the_newest_notices(app, fam, clock):
    event = open_(app, fam.school, send_notice=False, body="")
    for n in range(coconet.NOTICES_SHOWN + 3):
        coconet.post_notice(app, event, f"第{n + 1}報", actor="admin-a")
        clock.advance(minutes=1)
    [shown] = view_of(app, fam.g["g1"].id).events
    assert shown.notices[0].body == f"第{coconet.NOTICES_SHOWN + 3}報"
    assert len(shown.notices) == coconet.NOTICES_SHOWN and shown.older_notices == 3


def test_a_notice_posted_after_the_notices_were_kept_is_shown_at_the_next_opening(app, fam, clock):
    event = open_(app, fam.school, send_notice=False, body="")
    coconet.post_notice(app, event, "第1報", actor="admin-a")
    assert [n.body for n in view_of(app, fam.g["g1"].id).events[0].notices] == ["第1報"]
    clock.advance(minutes=1)
    coconet.post_notice(app, event, "第2報", actor="admin-a")
    assert [n.body for n in view_of(app, fam.g["g2"].id).events[0].notices] == ["第2報", "第1報"]


def test_opening_confirming_and_replying_are_recorded_as_facts(app, fam, clock):
    event = open_(app, fam.school)
    view = view_of(app, fam.g["g2"].id)
    assert coconet.record_check(app, view, "open") == 1
    assert coconet.record_check(app, view, "open") == 1                # each opening is a fact
    clock.advance(minutes=2)
    coconet.record_check(app, view, "confirm", event_id=event.id)
    coconet.record_check(app, view, "reply", event_id=event.id, body="17:00に迎えに行きます")
    kinds = [c.kind for c in CoconetCheck.select().order_by(CoconetCheck.at, CoconetCheck.kind)]
    assert sorted(kinds) == ["confirm", "open", "open", "reply"]
    [shown] = view_of(app, fam.g["g2"].id).events
    assert shown.confirmed_at == clock.now() and shown.reply == "17:00に迎えに行きます"


def test_checks_are_refused_for_events_not_in_the_guardians_view(app, fam):
    open_(app, fam.school)
    other_event = open_(app, fam.other)
    view = view_of(app, fam.g["g1"].id)
    with pytest.raises(NotFound):
        coconet.record_check(app, view, "confirm", event_id=other_event.id)
    with pytest.raises(InvalidInput):
        coconet.record_check(app, view, "reply", event_id=view.events[0].event_id, body="あ" * 101)
    with pytest.raises(InvalidInput):
        coconet.record_check(app, view, "reply", event_id=view.events[0].event_id, body=" ")


def test_the_dashboard_counts_states_checks_and_unreachable_children(app, fam):
    event = open_(app, fam.school)
    coconet.set_class_state(app, event, 3, "1", "protected", place="体育館", actor="teacher-a")
    coconet.record_pickup(app, event, fam.kids["ren"], guardian_id=fam.g["g2"].id, actor="teacher-a")
    coconet.set_states(app, event, [fam.kids["hana"]], "absent", actor="teacher-a")
    view = view_of(app, fam.g["g1"].id)
    coconet.record_check(app, view, "open")
    coconet.record_check(app, view_of(app, fam.g["g3"].id), "open")
    coconet.record_check(app, view_of(app, fam.g["g3"].id), "reply", event_id=event.id, body="向かいます")
    coconet.record_check(app, view, "confirm", event_id=event.id)
    coconet.record_check(app, view_of(app, fam.g["g5"].id), "open")    # another school's guardian
    board = coconet.dashboard(event)
    assert board.by_state == {"protected": 2, "handed_over": 1, "evacuated": 0, "absent": 1, "unknown": 0}
    assert (board.guardians, board.checked, board.confirmed, board.not_checked) == (3, 2, 1, 1)
    assert [row.student.name for row in board.unreachable] == ["sora"]         # no guardian at all
    checked = {row.student.name: row.checked for row in board.rows}
    assert checked == {"aoi": "confirmed", "ren": "opened", "sora": "", "hana": "confirmed"}
    assert [(name, check.body) for name, check in board.replies] == [("保護者3", "向かいます")]
    assert [(g, c, n["protected"]) for g, c, n in board.classes()] == [(3, "1", 2), (3, "2", 0)]


def test_a_guardian_whose_only_address_bounces_has_no_working_channel(app, fam):
    event = open_(app, fam.school, send_notice=False)
    contacts.suspend([c.id for c in fam.g["g2"].contact_points])
    board = coconet.dashboard(event)
    assert {row.student.name for row in board.unreachable} == {"ren", "sora"}


def test_the_csv_has_every_child_and_no_contact_data(app, fam, staff, roster):
    event = open_(app, staff.school)
    coconet.set_class_state(app, event, 1, "1", "protected", place="<script>体育館</script>", actor="teacher-a")
    text = coconet.export_csv(coconet.dashboard(event))
    assert text.startswith("\ufeff学年,組,出席番号,氏名,状態")
    lines = text.strip("\ufeff").strip().split("\r\n")
    assert len(lines) == 1 + Student.select().where(Student.school == staff.school).count()
    assert "学校で保護" in text and "不明" in text
    assert not ADDRESS_MARKER.search(text) and "@" not in text


def test_the_coconet_link_is_a_scoped_expiring_token_for_one_guardian(app, fam, clock):
    url = coconet.guardian_link(app, fam.g["g1"].id)
    token = url.rsplit("/c/", 1)[1]
    assert tokens.resolve_token(app, token, "coconet").guardian_id == fam.g["g1"].id
    with pytest.raises(tokens.InvalidToken):
        tokens.resolve_token(app, token, "read")
    clock.advance(days=400)
    with pytest.raises(tokens.InvalidToken):
        tokens.resolve_token(app, token, "coconet")


def test_an_unconfirmed_address_is_not_a_working_channel(app, fam):
    """A pending address receives nothing yet, so it must not count as a way to reach the family."""
    event = open_(app, fam.school, send_notice=False)
    contacts.suspend([c.id for c in fam.g["g2"].contact_points])
    contacts.add_contact(app, fam.g["g2"].id, "email", "new.rk0000009@example.jp")   # pending
    board = coconet.dashboard(event)
    assert "ren" in {row.student.name for row in board.unreachable}
