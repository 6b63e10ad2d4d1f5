"""The roster importer: encodings, headers, every error kind, idempotence, memberships, guardians."""
import json

import pytest

from appliance import contacts
from appliance.models import AuditEntry, ContactPoint, Guardian, GuardianLink, Membership, Student, StudentGroup
from appliance.roster_import import RosterImportError, decode_roster, import_roster
from appliance.schools import add_school

HEADER_JA = ["学年", "組", "出席番号", "氏名", "ふりがな", "学籍番号", "部活動", "通学路"]
HEADER_EN = ["grade", "class", "number", "name", "furigana", "student_number", "clubs", "routes"]
ROWS = [
    ["3", "1", "1", "山田 太郎", "やまだ たろう", "1001", "サッカー部;合唱部", "北"],
    ["3", "1", "2", "鈴木 一郎", "すずき いちろう", "1002", "", "南"],
    ["5", "2", "1", "山田 花子", "やまだ はなこ", "1003", "合唱部", "北"],
]


def roster_csv(rows, header=HEADER_JA, encoding="utf-8") -> bytes:
    """A CSV as Excel writes it: CRLF line ends, in the given encoding."""
    lines = [",".join(header)] + [",".join(str(cell) for cell in row) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


@pytest.fixture
def school(app):
    return add_school(app, "S1", "第一小学校", grades=6)


def students():
    return {s.student_number: s for s in Student.select()}


def groups_of(student_number):
    return sorted(f"{g.kind}:{g.key}" for g in StudentGroup.select().join(Membership).join(Student)
                  .where(Student.student_number == student_number))


def errors_of(app, school, data, **options):
    with pytest.raises(RosterImportError) as caught:
        import_roster(app, school, data, **options)
    assert Student.select().count() == 0
    return caught.value.errors


@pytest.mark.parametrize("encoding", ["cp932", "utf-8", "utf-8-sig"])
def test_imports_each_encoding_excel_writes(app, school, encoding):
    summary = import_roster(app, school, roster_csv(ROWS, encoding=encoding))
    assert summary == {"created": 3, "updated": 0, "unchanged": 0, "not_in_file": 0, "groups_created": 4,
                       "guardians_created": 0, "guardians_existing": 0}
    taro = students()["1001"]
    assert (taro.seat, taro.name, taro.furigana, taro.status) == ("3-1-1", "山田 太郎", "やまだ たろう", "enrolled")
    assert groups_of("1001") == ["club:サッカー部", "club:合唱部", "route:北"]
    assert groups_of("1002") == ["route:南"]


def test_english_headers_in_any_order_with_spaces(app, school):
    header = [f" {h} " for h in reversed(HEADER_EN)]
    import_roster(app, school, roster_csv([list(reversed(r)) for r in ROWS], header=header))
    assert students()["1003"].seat == "5-2-1"
    assert groups_of("1003") == ["club:合唱部", "route:北"]


def test_full_width_digits_spaces_and_separators_are_tolerated(app, school):
    rows = [["３", " 1 ", "１２", " 山田 太郎 ", "やまだ たろう", "１００１", "サッカー部；合唱部、 美術部 ", "北"]]
    import_roster(app, school, roster_csv(rows))
    taro = students()["1001"]
    assert (taro.grade, taro.class_name, taro.number, taro.name) == (3, "1", 12, "山田 太郎")
    assert groups_of("1001") == ["club:サッカー部", "club:合唱部", "club:美術部", "route:北"]


def test_optional_columns_may_be_absent_and_blank_lines_skipped(app, school):
    rows = [["1", "1", "1", "佐藤 蓮", ""], ["", "", "", "", ""], ["1", "1", "2", "佐藤 葵", "さとう あおい"]]
    summary = import_roster(app, school, roster_csv(rows, header=HEADER_JA[:5]))
    assert summary["created"] == 2
    assert all(s.student_number is None for s in Student.select())


@pytest.mark.parametrize("row, expected", [
    (["", "1", "3", "佐藤 蓮", ""], "3行目: 学年が入力されていません"),
    (["3", "", "3", "佐藤 蓮", ""], "3行目: 組が入力されていません"),
    (["3", "1", "", "佐藤 蓮", ""], "3行目: 出席番号が入力されていません"),
    (["3", "1", "3", "", ""], "3行目: 氏名が入力されていません"),
    (["七", "1", "3", "佐藤 蓮", ""], "3行目: 学年「七」は1〜6の数字で入力してください"),
    (["7", "1", "3", "佐藤 蓮", ""], "3行目: 学年「7」は1〜6の数字で入力してください"),
    (["0", "1", "3", "佐藤 蓮", ""], "3行目: 学年「0」は1〜6の数字で入力してください"),
    (["3", "1", "三", "佐藤 蓮", ""], "3行目: 出席番号「三」は1以上の数字で入力してください"),
    (["3", "1", "-2", "佐藤 蓮", ""], "3行目: 出席番号「-2」は1以上の数字で入力してください"),
    (["3", "1", "1", "佐藤 蓮", ""], "3行目: 3年1組1番は2行目と重複しています"),
    (["3", "1", "3", "佐藤 蓮", "", "1001"], "3行目: 学籍番号「1001」は2行目と重複しています"),
    (["3", "1", "3", "佐藤 蓮", "", "", "", "", "余分"], "3行目: 見出しより多くの列に値があります"),
])
def test_each_bad_row_is_a_line_error_and_nothing_is_written(app, school, row, expected):
    header = HEADER_JA[:len(row)] if len(row) <= len(HEADER_JA) else HEADER_JA
    first = ["3", "1", "1", "山田 太郎", "やまだ たろう", "1001", "", ""][:len(header)]
    errors = errors_of(app, school, roster_csv([first, row], header=header))
    assert expected in [f"{line}行目: {message}" for line, message in errors]
    assert StudentGroup.select().count() == 0


def test_every_error_is_reported_with_its_line(app, school):
    rows = [ROWS[0], ["七", "1", "2", "", ""], ROWS[1], ["3", "1", "x", "a", "b"], ["3", "1", "2", "c", "d"]]
    with pytest.raises(RosterImportError) as caught:
        import_roster(app, school, roster_csv([r[:5] for r in rows], header=HEADER_JA[:5]))
    assert caught.value.errors == [
        (3, "学年「七」は1〜6の数字で入力してください"), (3, "氏名が入力されていません"),
        (5, "出席番号「x」は1以上の数字で入力してください"), (6, "3年1組2番は4行目と重複しています")]
    assert "3行目: 学年「七」は1〜6の数字で入力してください" in str(caught.value)
    assert Student.select().count() == 0


@pytest.mark.parametrize("header, expected", [
    (["学年", "組", "出席番号", "氏名", "ふりがな", "血液型"], "1行目: 見出し「血液型」は使えません"),
    (["学年", "組", "出席番号", "氏名"], "1行目: 必須の見出し「ふりがな」がありません"),
    (["学年", "組", "出席番号", "氏名", "ふりがな", "name"], "1行目: 見出し「name」が二度あります"),
])
def test_bad_headers_are_errors_on_line_1(app, school, header, expected):
    errors = errors_of(app, school, roster_csv([["3", "1", "1", "山田 太郎", "", ""]], header=header))
    assert expected in [f"{line}行目: {message}" for line, message in errors]


def test_empty_file_is_an_error(app, school):
    assert errors_of(app, school, b"") == [(1, "見出しの行がありません")]


def test_undecodable_bytes_name_their_line(app, school):
    good = roster_csv(ROWS, encoding="cp932").split(b"\r\n")
    good[2] = good[2].replace("鈴木".encode("cp932"), b"\x82\xff")   # a lead byte with no trail
    errors = errors_of(app, school, b"\r\n".join(good))
    assert errors == [(3, "読み取れない文字があります（Shift_JIS か UTF-8 で保存してください）")]


def test_undecodable_line_in_a_mostly_utf8_file_is_named():
    data = roster_csv(ROWS).replace("鈴木".encode(), b"\xff\xfe")
    text, errors = decode_roster(data)
    assert [line for line, _ in errors] == [3]
    assert "山田 花子" in text


def test_utf16_is_refused_with_a_hint():
    _, errors = decode_roster(roster_csv(ROWS, encoding="utf-16"))
    assert errors[0][0] == 1 and "UTF-16" in errors[0][1]


def test_reimport_is_idempotent(app, school):
    data = roster_csv(ROWS, encoding="cp932")
    import_roster(app, school, data)
    before = {s.id: (s.seat, s.updated_at) for s in Student.select()}
    summary = import_roster(app, school, data)
    assert summary == {"created": 0, "updated": 0, "unchanged": 3, "not_in_file": 0, "groups_created": 0,
                       "guardians_created": 0, "guardians_existing": 0}
    assert {s.id: (s.seat, s.updated_at) for s in Student.select()} == before
    assert Membership.select().count() == 6


def test_reimport_updates_changed_fields_and_sets_memberships_exactly(app, school, clock):
    import_roster(app, school, roster_csv(ROWS))
    clock.advance(days=1)
    rows = [["3", "1", "1", "山田 太郎", "やまだ たろう", "1001", "美術部", "北"],
            ["3", "1", "2", "鈴木 一朗", "すずき いちろう", "1002", "", "南"],
            ROWS[2]]
    summary = import_roster(app, school, roster_csv(rows))
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 2, 1)
    assert groups_of("1001") == ["club:美術部", "route:北"]
    assert students()["1002"].name == "鈴木 一朗"
    assert students()["1002"].updated_at == clock.now()
    assert students()["1003"].updated_at != clock.now()


def test_a_missing_group_column_leaves_those_memberships_alone(app, school):
    import_roster(app, school, roster_csv(ROWS))
    header = HEADER_JA[:6] + ["部活動"]
    import_roster(app, school, roster_csv([r[:6] + [""] for r in ROWS], header=header))
    assert groups_of("1001") == ["route:北"]


def test_students_absent_from_the_file_are_left_alone_and_counted(app, school):
    import_roster(app, school, roster_csv(ROWS))
    summary = import_roster(app, school, roster_csv(ROWS[:1]))
    assert summary["not_in_file"] == 2
    assert {s.status for s in Student.select()} == {"enrolled"}


def test_students_may_swap_seats(app, school):
    import_roster(app, school, roster_csv(ROWS))
    swapped = [["3", "1", "2"] + ROWS[0][3:], ["3", "1", "1"] + ROWS[1][3:]]
    assert import_roster(app, school, roster_csv(swapped))["updated"] == 2
    assert (students()["1001"].seat, students()["1002"].seat) == ("3-1-2", "3-1-1")


def test_without_student_numbers_a_student_is_known_by_seat_and_name(app, school):
    header = HEADER_JA[:5]
    import_roster(app, school, roster_csv([r[:5] for r in ROWS], header=header))
    ids = {s.seat: s.id for s in Student.select()}
    summary = import_roster(app, school, roster_csv(ROWS))    # now with 学籍番号
    assert summary["updated"] == 3 and summary["created"] == 0
    assert {s.seat: s.id for s in Student.select()} == ids
    assert students()["1001"].seat == "3-1-1"


def test_a_new_student_in_an_occupied_seat_is_a_line_error(app, school):
    import_roster(app, school, roster_csv(ROWS))
    rows = [["3", "1", "1", "佐藤 蓮", "さとう れん", "2001", "", ""]]
    with pytest.raises(RosterImportError) as caught:
        import_roster(app, school, roster_csv(rows))
    assert caught.value.errors == [(2, "3年1組1番にはファイルにない在籍中の生徒（山田 太郎）がいます")]
    assert Student.select().count() == 3


def test_a_student_number_of_a_graduate_is_not_reused(app, school):
    import_roster(app, school, roster_csv(ROWS))
    Student.update(status="graduated").where(Student.student_number == "1001").execute()
    rows = [["1", "1", "1", "佐藤 蓮", "さとう れん", "1001", "", ""]]
    with pytest.raises(RosterImportError) as caught:
        import_roster(app, school, roster_csv(rows))
    assert caught.value.errors == [(2, "学籍番号「1001」は卒業・転出した生徒のものです")]


def test_import_is_audited(app, school):
    import_roster(app, school, roster_csv(ROWS), actor="cli:test")
    entry = AuditEntry.get(AuditEntry.action == "roster.import")
    assert (entry.actor, entry.school_id, json.loads(entry.detail)["created"]) == ("cli:test", school.id, 3)


GUARDIAN_HEADER = HEADER_JA + ["保護者氏名", "メール1", "メール2"]
FAMILY_ROWS = [
    ROWS[0] + ["山田 春子", "haruko@example.jp", "haruko@mobile.example.jp"],
    ROWS[1] + ["鈴木 母", "Suzuki@Example.JP", ""],
    ROWS[2] + ["山田 春子", "haruko@example.jp", ""],     # 太郎's sister: the same guardian
]


def guardian_view(app):
    """guardian name -> (sorted student numbers with approved links, live email count)."""
    view = {}
    for guardian in Guardian.select():
        linked = sorted(link.student.student_number for link in guardian.links if link.status == "approved")
        view[guardian.name] = (linked, contacts.summarise_contacts([guardian.id])[guardian.id].counts)
    return view


def test_guardians_are_created_approved_and_siblings_share_one(app, school):
    summary = import_roster(app, school, roster_csv(FAMILY_ROWS, header=GUARDIAN_HEADER), with_guardians=True)
    assert (summary["guardians_created"], summary["guardians_existing"]) == (2, 0)
    assert guardian_view(app) == {"山田 春子": (["1001", "1003"], {"email": 2}),
                                  "鈴木 母": (["1002"], {"email": 1})}
    [holder] = contacts.find_holders(app, "email", ["Suzuki@example.jp"])["Suzuki@example.jp"]
    assert [p.status for p in ContactPoint.select().where(ContactPoint.guardian == holder)] == ["active"]


def test_reimport_with_guardians_links_without_duplicating(app, school):
    import_roster(app, school, roster_csv(FAMILY_ROWS, header=GUARDIAN_HEADER), with_guardians=True)
    rows = FAMILY_ROWS + [["1", "1", "1", "山田 次郎", "やまだ じろう", "1004", "", "", "山田 春子",
                           "haruko@example.jp", ""]]
    summary = import_roster(app, school, roster_csv(rows, header=GUARDIAN_HEADER), with_guardians=True)
    assert (summary["created"], summary["guardians_created"], summary["guardians_existing"]) == (1, 0, 2)
    assert guardian_view(app)["山田 春子"][0] == ["1001", "1003", "1004"]
    assert GuardianLink.select().count() == 4


def test_same_address_under_another_name_is_another_guardian(app, school):
    rows = [FAMILY_ROWS[0], ROWS[1] + ["山田 夏男", "haruko@example.jp", ""]]
    summary = import_roster(app, school, roster_csv(rows, header=GUARDIAN_HEADER), with_guardians=True)
    assert summary["guardians_created"] == 2


def test_guardian_columns_are_ignored_without_the_flag(app, school):
    rows = [ROWS[0] + ["山田 春子", "not an address", ""]]
    summary = import_roster(app, school, roster_csv(rows, header=GUARDIAN_HEADER))
    assert summary["created"] == 1 and Guardian.select().count() == 0


@pytest.mark.parametrize("guardian, expected", [
    (["山田 春子", "haruko@", ""], "2行目: メール1のメールアドレスの形式が正しくありません"),
    (["山田 春子", "a@example.jp", "a b@example.jp"], "2行目: メール2のメールアドレスの形式が正しくありません"),
    (["山田 春子", "a@example.jp", "a@EXAMPLE.JP"], "2行目: 同じメールアドレスが二度書かれています"),
    (["山田 春子", "", ""], "2行目: 保護者氏名がありますがメールアドレスがありません"),
    (["", "a@example.jp", ""], "2行目: メールアドレスがありますが保護者氏名がありません"),
])
def test_bad_guardian_cells_are_line_errors(app, school, guardian, expected):
    errors = errors_of(app, school, roster_csv([ROWS[0] + guardian], header=GUARDIAN_HEADER), with_guardians=True)
    assert [f"{line}行目: {message}" for line, message in errors] == [expected]
    assert Guardian.select().count() == 0


def test_siblings_together_may_not_give_a_guardian_more_than_four_addresses(app, school):
    header = GUARDIAN_HEADER + ["メール3", "メール4"]
    rows = [ROWS[0] + ["山田 春子", "a@example.jp", "b@example.jp", "c@example.jp", "d@example.jp"],
            ROWS[2] + ["山田 春子", "a@example.jp", "e@example.jp", "", ""]]
    errors = errors_of(app, school, roster_csv(rows, header=header), with_guardians=True)
    assert errors == [(3, "保護者「山田 春子」のメールアドレスが兄弟姉妹の行と合わせて4件を超えます")]


def test_english_guardian_headers(app, school):
    header = HEADER_EN + ["guardian_name", "email1", "email2", "email3", "email4"]
    rows = [ROWS[0] + ["山田 春子", "a@example.jp", "b@example.jp", "c@example.jp", "d@example.jp"]]
    import_roster(app, school, roster_csv(rows, header=header), with_guardians=True)
    assert guardian_view(app) == {"山田 春子": (["1001"], {"email": 4})}
