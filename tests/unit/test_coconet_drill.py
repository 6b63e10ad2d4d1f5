"""The demo's CoCo-net drill: open an event, mark a class protected, hand a child over, show both views."""
import json

from click.testing import CliRunner

from appliance import coconet, db
from appliance.cli import main
from appliance.demo import run_drill, seed_demo
from appliance.sample_data import ADDRESS_MARKER


def test_the_drill_runs_in_the_demo_school_and_its_pages_show_it(app, web):
    seed_demo(app)
    result = run_drill(app)
    assert result.by_state["handed_over"] == 1 and result.by_state["protected"] >= 10
    staff = web.test_client()
    staff.sign_in("demo-admin", _password(app, "demo-admin"))
    board = staff.get(result.dashboard_path).get_data(as_text=True)
    assert "避難訓練" in board and not ADDRESS_MARKER.search(board)
    guardian = web.test_client().get(result.guardian_url[result.guardian_url.index("/c/"):])
    page = guardian.get_data(as_text=True)
    assert guardian.status_code == 200 and result.handed_over in page and "引き渡し済み" in page
    assert coconet.current_event(coconet.CoconetEvent.get_by_id(result.event_id).school).id == result.event_id


def _password(app, login):
    lines = (app.data_dir / "demo-logins.txt").read_text(encoding="utf-8").splitlines()
    return next(line.split("\t")[2] for line in lines if line.split("\t")[1:2] == [login])


def test_the_drill_command_prints_where_to_look(tmp_path):
    runner, data_dir = CliRunner(), str(tmp_path / "demo")
    try:
        for args in (["init"], ["demo"]):
            assert runner.invoke(main, ["--data-dir", data_dir, *args]).exit_code == 0
        result = runner.invoke(main, ["--data-dir", data_dir, "drill"])
        assert result.exit_code == 0, result.stderr
        printed = json.loads(result.stdout)
        assert printed["dashboard"].startswith("http://127.0.0.1:8080/admin/s/demo/coconet/")
        assert "/c/" in printed["guardian_view"] and printed["by_state"]["handed_over"] == 1
    finally:
        db.close_database()
