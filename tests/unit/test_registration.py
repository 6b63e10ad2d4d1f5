"""Registration: codes, the web page's and the empty mail's requests, the mailed link, siblings, approval."""
from dataclasses import dataclass
from datetime import timedelta

import pytest

from appliance import contacts, registration, registrations, tokens
from appliance.errors import InvalidInput
from appliance.messages import create_message
from appliance.models import (AuditEntry, ContactPoint, Delivery, Guardian, GuardianLink, Message, Registration,
                              RegistrationCode, Student)
from appliance.schools import add_school
from appliance.targeting import guardian_query, parse_rule
from tests.conftest import add_students
from tests.unit.guardian_fixtures import issued_token


@dataclass
class Sheet:
    school: object
    ichiro: Student
    jiro: Student          # ichiro's younger brother
    codes: dict


@pytest.fixture
def sheet(app):
    school = add_school(app, "s1", "さくら小学校")
    ichiro, jiro = add_students(app, school, [(3, "1", 1, "山田 一郎"), (1, "1", 4, "山田 次郎")])
    codes = registration.issue_codes(app, school, [ichiro, jiro], actor="admin")
    return Sheet(school, ichiro, jiro, codes)


def link_token(app, reg: Registration) -> str:
    """The token of the link the registration's mail carries."""
    return issued_token(app, "register", reg.guardian_id, reg.message_id)


def approve(app, school, link):
    registrations.decide_link(app, school, link.id, "approve", actor="admin")


# --- codes -----------------------------------------------------------------------------------------

def test_codes_are_ten_crockford_characters_one_per_slot_and_stored_only_hashed(app, sheet):
    assert set(sheet.codes) == {(s.id, slot) for s in (sheet.ichiro, sheet.jiro) for slot in (1, 2)}
    assert len(set(sheet.codes.values())) == 4
    for code in sheet.codes.values():
        assert len(code) == 10 and set(code) <= set(registration.ALPHABET)
    stored = {row.code_hash for row in RegistrationCode.select()}
    assert stored == {registration.code_hash(app, c) for c in sheet.codes.values()}
    assert not stored & set(sheet.codes.values())
    assert registration.format_code("ABCDE12345") == "ABCDE-12345"


@pytest.mark.parametrize("typed", ["abcde-fghjk", "ＡＢＣＤＥ－ＦＧＨＪＫ", " ABCDE FGHJK ", "ABCDEFGHJK"])
def test_typed_codes_forgive_case_width_spaces_and_hyphens(typed):
    assert registration.normalise_code(typed) == "ABCDEFGHJK"


def test_look_alike_letters_read_as_digits():
    assert registration.normalise_code("OIL00-11111") == "0110011111"


@pytest.mark.parametrize("typed", ["", "ABCDE", "ABCDEFGHJKM", "ABCDE-FGHJ!", "<script>"])
def test_malformed_codes_are_refused_in_japanese(typed):
    with pytest.raises(registration.CodeRefused, match="英数字10文字"):
        registration.normalise_code(typed)


def test_a_code_expires(app, clock, sheet):
    code = sheet.codes[sheet.ichiro.id, 1]
    clock.advance(days=registration.CODE_LIFETIME.days - 1)
    assert registration.find_code(app, code, client="c").student_id == sheet.ichiro.id
    clock.advance(days=1)
    with pytest.raises(registration.CodeRefused, match="有効期限") as refused:
        registration.find_code(app, code, client="c")
    assert refused.value.reason == "expired"


def test_reissuing_voids_the_old_code_of_the_slot_only(app, sheet):
    assert registration.count_live_codes(app, [sheet.ichiro]) == 2
    new = registration.issue_codes(app, sheet.school, [sheet.ichiro], actor="admin", slots=[1])
    with pytest.raises(registration.CodeRefused, match="再発行") as refused:
        registration.find_code(app, sheet.codes[sheet.ichiro.id, 1], client="c")
    assert refused.value.reason == "void"
    assert registration.find_code(app, new[sheet.ichiro.id, 1], client="c").slot == 1
    assert registration.find_code(app, sheet.codes[sheet.ichiro.id, 2], client="c").slot == 2
    assert registration.count_live_codes(app, [sheet.ichiro]) == 2
    assert AuditEntry.select().where(AuditEntry.action == "registration.codes_issue").count() == 2


def test_codes_are_issued_only_for_the_schools_own_students(app, sheet):
    other = add_school(app, "s2", "もみじ小学校")
    with pytest.raises(Exception, match="見つかりません"):
        registration.issue_codes(app, other, [sheet.ichiro], actor="admin")


def test_guessing_codes_locks_the_client_out_even_for_a_valid_code(app, sheet):
    for n in range(registration.CODE_GUESSES.count):
        with pytest.raises(registration.CodeRefused) as refused:
            registration.find_code(app, f"ZZZZZ{n:05d}", client="10.0.0.9")
        assert refused.value.reason == "unknown"
    with pytest.raises(registration.CodeRefused, match="しばらく") as refused:
        registration.find_code(app, sheet.codes[sheet.ichiro.id, 1], client="10.0.0.9")
    assert refused.value.reason == "locked"
    assert registration.find_code(app, sheet.codes[sheet.ichiro.id, 1], client="10.0.0.10")


# --- the web page ----------------------------------------------------------------------------------

def test_web_registration_mails_a_link_and_links_nothing_before_it_is_opened(app, sheet):
    reg = registration.register_by_web(app, sheet.codes[sheet.ichiro.id, 1], "山田 花子", "母", "hanako@example.jp")
    assert reg.status == "waiting" and reg.via == "web"
    assert GuardianLink.select().count() == 0
    point = ContactPoint.get_by_id(reg.contact_id)
    assert point.status == "pending"
    mail = Message.get_by_id(reg.message_id)
    assert (mail.kind, mail.link_scope, mail.school_id) == ("system", "register", sheet.school.id)
    assert Delivery.get(Delivery.message == mail).contact_id == point.id
    assert Guardian.get_by_id(reg.guardian_id).name == "山田 花子"


def test_opening_the_link_confirms_the_address_uses_the_code_and_asks_the_school(app, sheet):
    code = sheet.codes[sheet.ichiro.id, 1]
    reg = registration.register_by_web(app, code, "山田 花子", "母", "hanako@example.jp")
    shown = registration.pending(app, link_token(app, reg))
    assert (shown.student_name, shown.school_name, shown.needs_name, shown.needs_relationship) == (
        "山田 一郎", "さくら小学校", False, False)
    link = registration.complete(app, link_token(app, reg))
    assert (link.status, link.relationship, link.student_id) == ("pending", "母", sheet.ichiro.id)
    assert ContactPoint.get_by_id(reg.contact_id).status == "active"
    used = RegistrationCode.get(RegistrationCode.code_hash == registration.code_hash(app, code))
    assert (used.status, used.guardian_id) == ("used", reg.guardian_id)
    with pytest.raises(InvalidInput, match="すでに完了"):
        registration.complete(app, link_token(app, reg))
    with pytest.raises(registration.CodeRefused, match="すでに使われています"):
        registration.register_by_web(app, code, "誰か", "父", "other@example.jp")
    [pending] = registrations.pending_registrations(sheet.school)
    assert (pending.guardian_name, pending.relationship, pending.student_name) == ("山田 花子", "母", "山田 一郎")


def test_approval_makes_the_guardian_a_target_and_the_snapshot_delivers_to_the_address(app, sheet):
    reg = registration.register_by_web(app, sheet.codes[sheet.ichiro.id, 1], "山田 花子", "母", "hanako@example.jp")
    link = registration.complete(app, link_token(app, reg))
    rule = parse_rule("class:3-1")
    assert reg.guardian_id not in {gid for (gid,) in guardian_query(sheet.school, rule).tuples()}
    approve(app, sheet.school, link)
    assert reg.guardian_id in {gid for (gid,) in guardian_query(sheet.school, rule).tuples()}
    message = create_message(app, sheet.school, audience="class:3-1", subject="遠足", body="持ち物: 弁当")
    assert [d.contact_id for d in Delivery.select().where(Delivery.message == message)] == [reg.contact_id]


def test_a_link_for_an_unconfirmed_registration_never_reaches_the_school(app, sheet):
    registration.register_by_web(app, sheet.codes[sheet.ichiro.id, 1], "山田 花子", "母", "hanako@example.jp")
    assert registrations.pending_registrations(sheet.school) == []


@pytest.mark.parametrize("name, relationship, address, error", [
    ("", "母", "a@example.jp", "保護者氏名を入力"),
    ("花子", "", "a@example.jp", "続柄を選んで"),
    ("花子", "母", "not-an-address", "メールアドレスの形式"),
    ("あ" * 61, "母", "a@example.jp", "60文字まで"),
])
def test_web_registration_refuses_bad_input_and_stores_nothing(app, sheet, name, relationship, address, error):
    with pytest.raises(InvalidInput, match=error):
        registration.register_by_web(app, sheet.codes[sheet.ichiro.id, 1], name, relationship, address)
    assert Registration.select().count() == 0 and Guardian.select().count() == 0


def test_two_links_of_one_code_only_the_first_opened_wins(app, sheet):
    code = sheet.codes[sheet.ichiro.id, 1]
    first = registration.register_by_web(app, code, "山田 花子", "母", "hanako@example.jp")
    second = registration.register_by_web(app, code, "山田 太郎", "父", "taro@example.jp")
    registration.complete(app, link_token(app, second))
    with pytest.raises(InvalidInput):
        registration.complete(app, link_token(app, first))
    assert GuardianLink.select().count() == 1


def test_links_mailed_to_one_address_are_limited(app, sheet):
    code = sheet.codes[sheet.ichiro.id, 1]
    for _ in range(registration.REGISTRATION_MAILS.count):
        registration.register_by_web(app, code, "山田 花子", "母", "hanako@example.jp")
    with pytest.raises(InvalidInput, match="しばらくして"):
        registration.register_by_web(app, code, "山田 花子", "母", "hanako@example.jp")


# --- the empty mail --------------------------------------------------------------------------------

def test_an_empty_mail_gets_a_link_whose_page_asks_name_and_relationship(app, sheet):
    code = sheet.codes[sheet.jiro.id, 2]
    assert registration.register_by_mail(app, code.lower(), "Hanako@Docomo.NE.JP") == "created"
    reg = Registration.get()
    assert (reg.via, reg.status) == ("mail", "waiting")
    assert Delivery.get(Delivery.message == reg.message_id).contact_id == reg.contact_id
    shown = registration.pending(app, link_token(app, reg))
    assert shown.needs_name and shown.needs_relationship
    with pytest.raises(InvalidInput, match="保護者氏名"):
        registration.complete(app, link_token(app, reg), relationship="母")
    assert ContactPoint.get_by_id(reg.contact_id).status == "pending"       # nothing half-stored
    link = registration.complete(app, link_token(app, reg), guardian_name="山田 花子", relationship="母")
    assert Guardian.get_by_id(link.guardian_id).name == "山田 花子"
    assert contacts.own_contacts(app, link.guardian_id, "email")[0].value == "Hanako@docomo.ne.jp"


def test_a_second_empty_mail_from_the_same_address_gets_a_fresh_link_and_voids_the_old(app, sheet):
    code = sheet.codes[sheet.jiro.id, 1]
    registration.register_by_mail(app, code, "hanako@example.jp")
    first = Registration.get()
    assert registration.register_by_mail(app, code, "hanako@example.jp") == "resent"
    assert Guardian.select().count() == 1 and ContactPoint.select().count() == 1
    with pytest.raises(InvalidInput, match="最新のメール"):
        registration.pending(app, link_token(app, first))


@pytest.mark.parametrize("status", ["used", "void", "expired"])
def test_an_empty_mail_with_a_dead_code_is_refused_in_japanese(app, clock, sheet, status):
    code = sheet.codes[sheet.ichiro.id, 1]
    if status == "expired":
        clock.advance(days=registration.CODE_LIFETIME.days + 1)
    else:
        RegistrationCode.update(status=status).execute()
    with pytest.raises(InvalidInput) as refused:
        registration.register_by_mail(app, code, "x@example.jp")
    assert refused.value.reason == status and Registration.select().count() == 0


def test_empty_mails_guessing_codes_are_locked_out_per_sender(app, sheet):
    for n in range(registration.CODE_GUESSES.count):
        with pytest.raises(InvalidInput):
            registration.register_by_mail(app, f"ZZZZZ{n:05d}", "guess@example.jp")
    with pytest.raises(InvalidInput, match="しばらく"):
        registration.register_by_mail(app, sheet.codes[sheet.ichiro.id, 1], "guess@example.jp")
    assert registration.register_by_mail(app, sheet.codes[sheet.ichiro.id, 1], "real@example.jp") == "created"


# --- siblings ----------------------------------------------------------------------------------------

def test_a_guardian_with_a_confirmed_address_links_a_sibling_without_registering_again(app, sheet):
    first = registration.register_by_web(app, sheet.codes[sheet.ichiro.id, 1], "山田 花子", "母", "hanako@example.jp")
    approve(app, sheet.school, registration.complete(app, link_token(app, first)))
    assert registration.register_by_mail(app, sheet.codes[sheet.jiro.id, 1], "hanako@example.jp") == "known"
    second = Registration.get(Registration.status == "waiting")
    assert (second.guardian_id, second.contact_id) == (first.guardian_id, first.contact_id)
    link = registration.complete(app, link_token(app, second), relationship="母")
    assert (link.guardian_id, link.student_id, link.status) == (first.guardian_id, sheet.jiro.id, "pending")
    assert Guardian.select().count() == 1 and ContactPoint.select().count() == 1


def test_a_signed_in_guardian_links_a_sibling_by_code_at_once(app, sheet):
    first = registration.register_by_web(app, sheet.codes[sheet.ichiro.id, 1], "山田 花子", "母", "hanako@example.jp")
    registration.complete(app, link_token(app, first))
    link = registration.link_by_code(app, first.guardian_id, sheet.codes[sheet.jiro.id, 2], "母", client="c")
    assert (link.student_id, link.status) == (sheet.jiro.id, "pending")
    with pytest.raises(registration.CodeRefused, match="すでに使われています"):
        registration.link_by_code(app, first.guardian_id, sheet.codes[sheet.jiro.id, 2], "母", client="c")


def test_two_registrations_of_one_address_crossing_end_with_one_guardian(app, sheet):
    """Both children's codes sent from a new address before either link was opened."""
    registration.register_by_web(app, sheet.codes[sheet.ichiro.id, 1], "山田 花子", "母", "hanako@example.jp")
    registration.register_by_web(app, sheet.codes[sheet.jiro.id, 1], "山田 花子", "母", "hanako@example.jp")
    one, two = Registration.select().order_by(Registration.created_at, Registration.id)
    registration.complete(app, link_token(app, one))
    link = registration.complete(app, link_token(app, two))
    assert link.guardian_id == one.guardian_id
    assert {ln.student_id for ln in GuardianLink.select()} == {sheet.ichiro.id, sheet.jiro.id}
    assert contacts.count_live(one.guardian_id, "email", ("active",)) == 1
    assert contacts.count_live(two.guardian_id, "email") == 0


def test_a_rejected_guardian_may_ask_again_with_a_new_code(app, sheet):
    reg = registration.register_by_web(app, sheet.codes[sheet.ichiro.id, 1], "山田 花子", "母", "hanako@example.jp")
    link = registration.complete(app, link_token(app, reg))
    registrations.decide_link(app, sheet.school, link.id, "reject", actor="admin")
    new = registration.issue_codes(app, sheet.school, [sheet.ichiro], actor="admin", slots=[1])
    again = registration.link_by_code(app, reg.guardian_id, new[sheet.ichiro.id, 1], "母", client="c")
    assert (again.id, again.status) == (link.id, "pending")


def test_the_link_expires_with_its_mail(app, clock, sheet):
    reg = registration.register_by_web(app, sheet.codes[sheet.ichiro.id, 1], "山田 花子", "母", "hanako@example.jp")
    clock.advance(days=7, seconds=1)
    with pytest.raises(tokens.InvalidToken):
        registration.complete(app, link_token(app, reg))
    assert timedelta(days=7) == tokens.LIFETIMES["register"]
