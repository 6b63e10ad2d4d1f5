"""The statements every guardian's tap or CoCo-net opening runs are prepared once, not at every call.

SQLite asks the authorizer on every prepare, so a statement prepared again shows up as
authorizer calls on a second round with other values (db.fetch says how to write them).
And the CoCo-net link's statement sorts nothing per row but the children's class order.
"""
import apsw
import pytest

from appliance import coconet, db, message_page
from appliance.models import GuardianLink
from tests.conftest import query_plan
from tests.unit.guardian_fixtures import issued_token


@pytest.fixture
def prepares():
    """Count SQLite's prepares on this thread's connection from the moment `.start()` is called."""
    class Counter:
        count = 0
        counting = False

        def authorize(self, *_):
            if self.counting:
                self.count += 1
            return apsw.SQLITE_OK

        def start(self):
            self.counting, self.count = True, 0
    counter = Counter()
    connection = db.database.connection()
    connection.authorizer = counter.authorize          # setting it expires what was prepared before
    yield counter
    connection.authorizer = None


def test_a_tap_and_a_coconet_opening_prepare_nothing_the_second_time(app, families, prepares):
    event = families.open_earthquake(app)
    coconet.post_notice(app, event, "正門で引き渡します。", actor="test")
    [jiro] = GuardianLink.select().where(GuardianLink.guardian == families.hanako.id)
    coconet.record_pickup(app, event, jiro.student, guardian_id=families.hanako.id, actor="test")   # its pickup read
    guardians = (families.taro, families.hanako)
    read = {guardian.id: issued_token(app, "read", guardian.id, families.message.id) for guardian in guardians}
    opening = {guardian.id: issued_token(app, "coconet", guardian.id, None) for guardian in guardians}

    def guardian_requests(guardian):
        tap = message_page.tap(app, read[guardian.id])
        message_page.attachment_links(message_page.load(tap.message_id, tap.guardian_id))
        coconet.link_view(app, opening[guardian.id])
    for guardian in (families.taro, families.hanako):   # each statement's text prepared once (IN lists vary)
        guardian_requests(guardian)
    coconet.post_notice(app, event, "17時から引き渡します。", actor="test")      # the notices are read again
    prepares.start()
    for guardian in (families.taro, families.hanako):
        guardian_requests(guardian)
    assert prepares.count == 0


def test_a_coconet_opening_sorts_nothing_per_child(app):
    """A child's newest state and a guardian's newest confirmation and reply are the last entries of their
    indexes; the one sort left puts the guardian's children in class order."""
    plan = query_plan(db._statement(coconet._LINK_VIEW, db.database.param), (b"", ""))
    assert [step for step in plan if "TEMP B-TREE" in step] == ["USE TEMP B-TREE FOR ORDER BY"]
    assert any(step.startswith("SEARCH x USING COVERING INDEX coconet_state_student") for step in plan)
    assert any(step.startswith("SEARCH st USING INTEGER PRIMARY KEY") for step in plan)
