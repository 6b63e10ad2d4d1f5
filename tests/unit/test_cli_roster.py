"""`appliance roster ...` end to end through click: exit codes, JSON on stdout, errors on stderr."""
import json

from tests.conftest import ok


def test_import_prints_a_json_summary_and_is_idempotent(cli, roster_file):
    first = ok(cli("roster", "import", "--school", "S1", roster_file, "--with-guardians"))
    assert (first["created"], first["guardians_created"], first["groups_created"]) == (3, 1, 3)
    again = ok(cli("roster", "import", "--school", "S1", roster_file, "--with-guardians"))
    assert (again["unchanged"], again["guardians_existing"], again["guardians_created"]) == (3, 1, 0)


def test_import_errors_go_to_stderr_one_per_line_and_exit_1(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes("学年,組,出席番号,氏名,ふりがな\n七,1,1,山田 太郎,\n3,1,,鈴木 一郎,\n".encode("cp932"))
    result = cli("roster", "import", "--school", "S1", str(bad))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "2行目: 学年「七」は1〜6の数字で入力してください\n" in result.stderr
    assert "3行目: 出席番号が入力されていません\n" in result.stderr


def test_import_to_an_unknown_school_is_a_clear_error(cli, roster_file):
    result = cli("roster", "import", "--school", "NOPE", roster_file)
    assert result.exit_code == 1 and "学校コード NOPE の学校はありません" in result.stderr


def test_show_prints_the_student_without_contact_values(cli, roster_file):
    ok(cli("roster", "import", "--school", "S1", roster_file, "--with-guardians"))
    shown = ok(cli("roster", "show", "--school", "S1", "--student", "3-1-1"))
    assert (shown["seat"], shown["name"], shown["status"]) == ("3-1-1", "山田 太郎", "enrolled")
    assert shown["groups"] == [{"kind": "club", "key": "サッカー部", "name": "サッカー部"},
                               {"kind": "route", "key": "北", "name": "北"}]
    assert shown["guardians"]["approved"] == 1
    assert "haruko" not in json.dumps(shown)


def test_show_unknown_student_exits_1(cli, roster_file):
    ok(cli("roster", "import", "--school", "S1", roster_file))
    result = cli("roster", "show", "--school", "S1", "--student", "9-9-9")
    assert result.exit_code == 1 and "生徒「9-9-9」はいません" in result.stderr


def test_promote_with_and_without_a_class_file(cli, roster_file, tmp_path):
    ok(cli("roster", "import", "--school", "S1", roster_file))
    classes = tmp_path / "classes.csv"
    classes.write_bytes("学年,組,出席番号,氏名,ふりがな\n4,3,7,山田 太郎,やまだ たろう\n".encode("cp932"))
    # The school was made this school year, so its roster is this year's already.
    refused = cli("roster", "promote", "--school", "S1", "--classes", str(classes))
    assert refused.exit_code == 1 and "--force" in refused.stderr
    summary = ok(cli("roster", "promote", "--school", "S1", "--classes", str(classes), "--force"))
    del summary["school_year"]
    assert summary == {"promoted": 2, "graduated": 1, "reassigned": 1}
    assert ok(cli("roster", "show", "--school", "S1", "--student", "1001"))["seat"] == "4-3-7"
    assert ok(cli("roster", "show", "--school", "S1", "--student", "1003"))["seat"] == "6-2-1"
    assert ok(cli("roster", "show", "--school", "S1", "--student", "1002"))["status"] == "graduated"


def test_promote_mismatch_exits_1_and_changes_nothing(cli, roster_file, tmp_path):
    ok(cli("roster", "import", "--school", "S1", roster_file))
    classes = tmp_path / "classes.csv"
    classes.write_bytes("学年,組,出席番号,氏名,ふりがな\n4,3,7,山田 次郎,やまだ じろう\n".encode("utf-8-sig"))
    result = cli("roster", "promote", "--school", "S1", "--classes", str(classes), "--force")
    assert result.exit_code == 1
    assert "2行目: 4年に進級する生徒に「山田 次郎」（やまだ じろう）はいません" in result.stderr
    assert "4年に進級する「山田 太郎」（いまの3-1-1）がファイルにありません" in result.stderr
    assert ok(cli("roster", "show", "--school", "S1", "--student", "1001"))["seat"] == "3-1-1"


def test_transfer_out_then_in_at_another_school_keeps_the_guardians(cli, roster_file):
    ok(cli("roster", "import", "--school", "S1", roster_file, "--with-guardians"))
    out = ok(cli("roster", "transfer-out", "--school", "S1", "--student", "5-2-1"))
    assert out["status"] == "transferred_out"
    moved = ok(cli("roster", "transfer-in", "--school", "S2", "--grade", "5", "--class", "1", "--number", "9",
                   "--name", "山田 花子", "--furigana", "やまだ はなこ", "--student-number", "77",
                   "--guardians-from", "S1:1003"))
    assert (moved["school"], moved["seat"], moved["student_number"]) == ("S2", "5-1-9", "77")
    assert moved["guardians"]["approved"] == 1
    again = cli("roster", "transfer-out", "--school", "S1", "--student", "1003")
    assert again.exit_code == 1 and "在籍していません" in again.stderr


def test_transfer_in_to_a_taken_seat_exits_1(cli, roster_file):
    ok(cli("roster", "import", "--school", "S1", roster_file))
    result = cli("roster", "transfer-in", "--school", "S1", "--grade", "3", "--class", "1", "--number", "1",
                 "--name", "佐藤 蓮")
    assert result.exit_code == 1 and "3年1組1番にはすでに「山田 太郎」が在籍しています" in result.stderr


def test_join_and_leave(cli, roster_file):
    ok(cli("roster", "import", "--school", "S1", roster_file))
    assert ok(cli("roster", "join", "--school", "S1", "--student", "1002", "--group", "group:図書委員")) == {
        "changed": True}
    assert ok(cli("roster", "join", "--school", "S1", "--student", "1002", "--group", "group:図書委員")) == {
        "changed": False}
    assert ok(cli("roster", "leave", "--school", "S1", "--student", "1002", "--group", "route:南")) == {
        "changed": True}
    groups = ok(cli("roster", "show", "--school", "S1", "--student", "1002"))["groups"]
    assert groups == [{"kind": "custom", "key": "図書委員", "name": "図書委員"}]
    bad = cli("roster", "join", "--school", "S1", "--student", "1002", "--group", "図書委員")
    assert bad.exit_code == 1 and "種類:名前" in bad.stderr


def test_roster_help_lists_the_commands(cli):
    result = cli("roster", "--help")
    for command in ("import", "promote", "transfer-out", "transfer-in", "join", "leave", "show"):
        assert command in result.stdout
