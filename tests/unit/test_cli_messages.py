"""`appliance audience` and `appliance send`, end to end through the CLI."""
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from appliance import contacts, db, guardians
from appliance.cli import main
from appliance.models import Message, Student, StudentGroup
from appliance.schools import add_school


@pytest.fixture
def cli(app):
    """Run `appliance --data-dir DATA ...` against a school A with three guardians (one with push)."""
    school = add_school(app, "A", "第一小学校")
    now = app.clock.now()
    with db.write():
        s1, s2 = (Student.create(school=school, grade=grade, class_name="1", number=1, name=f"s{grade}",
                                 created_at=now, updated_at=now) for grade in (3, 4))
        StudentGroup.create(school=school, kind="club", key="soccer", name="サッカー部", created_at=now)
    g1 = guardians.add_guardian(app, "g1", student_ids=[s1.id], emails=["a@example.jp", "b@example.jp"],
                                approved=True)
    contacts.add_contact(app, g1.id, "push", json.dumps({"endpoint": "https://push.example/1",
                                                       "keys": {"p256dh": "B" * 87, "auth": "A" * 22}}),
                         status="active")
    guardians.add_guardian(app, "g2", student_ids=[s1.id, s2.id], emails=["c@example.jp"], approved=True)
    guardians.add_guardian(app, "g3", student_ids=[s2.id], emails=["d@example.jp"])   # pending
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, ["--data-dir", str(app.data_dir), *args], env={"APPLIANCE_DATA_DIR": None})

    return invoke


@pytest.fixture
def body_file(tmp_path):
    path = tmp_path / "body.txt"
    path.write_text("保護者の皆様\n明日は運動会です。\n", encoding="utf-8")
    return path


def test_audience_prints_counts(cli):
    result = cli("audience", "--school", "A", "grade:3 OR grade:4")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"students": 2, "guardians": 2}
    result = cli("audience", "--school", "A", "grade:4 AND NOT club:soccer")
    assert json.loads(result.stdout) == {"students": 1, "guardians": 1}


@pytest.mark.parametrize("args, error", [
    (["--school", "A", "(grade:3 OR grade:4"], "エラー: 「)」がありません: 1文字目の「(」が閉じられていません（20文字目）"),
    (["--school", "A", "colour:red"], "不明な種類「colour」: all, grade, class, club, route, group が使えます（1文字目）"),
    (["--school", "A", "club:tennis"], "この学校にないグループがあります: club:tennis"),
    (["--school", "Z", "all"], "学校コード Z の学校はありません"),
])
def test_audience_errors_go_to_stderr_with_exit_1(cli, args, error):
    result = cli("audience", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert error in result.stderr


def test_send_creates_the_message_and_prints_its_summary(cli, body_file):
    result = cli("send", "--school", "A", "--audience", "grade:3", "--subject", "運動会",
                 "--body-file", str(body_file), "--channel", "email", "--channel", "push")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {"message": summary["message"], "recipients": 2, "deliveries": {"email": 3, "push": 1}}
    message = Message.get_by_id(summary["message"])
    assert (message.subject, message.body, message.audience) == ("運動会", "保護者の皆様\n明日は運動会です。", "grade:3")
    assert (message.priority, message.reply_needed, message.channels) == ("normal", False, "email,push")


def test_send_emergency_scheduled_in_tokyo_time(cli, body_file):
    result = cli("send", "--school", "A", "--audience", "all", "--subject", "緊急", "--body-file", str(body_file),
                 "--priority", "emergency", "--reply-needed", "--at", "2031-04-07T08:00",
                 "--expires", "2031-04-07T18:00+09:00")
    assert result.exit_code == 0, result.output
    message = Message.get_by_id(json.loads(result.stdout)["message"])
    assert (message.priority, message.reply_needed) == ("emergency", True)
    assert message.send_at == datetime(2031, 4, 6, 23, 0, tzinfo=timezone.utc)
    assert message.expires_at == datetime(2031, 4, 7, 9, 0, tzinfo=timezone.utc)
    assert {d.due_at for d in message.deliveries} == {message.send_at}


def test_send_reads_a_body_with_a_byte_order_mark(cli, tmp_path):
    path = tmp_path / "notepad.txt"
    path.write_bytes("\ufeff本文です".encode())
    result = cli("send", "--school", "A", "--audience", "all", "--subject", "件名", "--body-file", str(path))
    assert result.exit_code == 0, result.output
    assert Message.get_by_id(json.loads(result.stdout)["message"]).body == "本文です"


@pytest.mark.parametrize("args, error", [
    (["--body-file", "{missing}"], "本文ファイルがありません"),
    (["--body-file", "{sjis}"], "本文ファイルが UTF-8 ではありません"),
    (["--body-file", "{body}", "--at", "tomorrow"], "--at の日時を読めません: 'tomorrow'"),
    (["--body-file", "{body}", "--at", "2031-04-07T08:00", "--expires", "2031-04-07T07:00"],
     "有効期限は送信日時より後にしてください"),
    (["--body-file", "{body}", "--audience", "grade:3 club:soccer"], "「club:soccer」の前に AND か OR が必要です（9文字目）"),
    (["--body-file", "{body}", "--audience", "grade:5"], "当てはまる保護者がいません"),
])
def test_send_errors_go_to_stderr_with_exit_1(cli, body_file, tmp_path, args, error):
    sjis = tmp_path / "sjis.txt"
    sjis.write_bytes("運動会".encode("shift_jis"))
    paths = {"missing": tmp_path / "none.txt", "sjis": sjis, "body": body_file}
    args = [arg.format(**paths) for arg in args]
    if "--audience" not in args:
        args += ["--audience", "all"]
    result = cli("send", "--school", "A", "--subject", "件名", *args)
    assert result.exit_code == 1
    assert error in result.stderr
    assert Message.select().count() == 0


def test_message_stats_prints_the_figures(cli, body_file):
    sent = json.loads(cli("send", "--school", "A", "--audience", "grade:3", "--subject", "運動会",
                          "--body-file", str(body_file), "--channel", "email", "--channel", "push").stdout)
    result = cli("message", "stats", sent["message"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert (stats["recipients"], stats["read"], stats["read_percent"], stats["answered"]) == (2, 0, 0.0, 0)
    assert stats["channels"]["email"] == {"queued": 3, "deferred": 0, "delivered": 0, "bounced": 0, "expired": 0,
                                          "total": 3}
    assert stats["channels"]["push"]["queued"] == 1


def test_message_stats_of_an_unknown_message_is_a_clear_error(cli):
    result = cli("message", "stats", "no-such-id")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "エラー: ID no-such-id の連絡はありません" in result.stderr
