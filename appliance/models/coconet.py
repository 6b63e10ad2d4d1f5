"""CoCo-net, the disaster page: an event (owned) and what is recorded during it (facts).

Why this split: a disaster is when a site is most likely to be lost, and the page
must go on at a peer. Everything recorded *during* an event is therefore a fact:
insert-only, written at whichever site served the request, merged by union, so two
sites never hold conflicting versions of a row.

- A child's state is not a column updated in place but a history of
  :class:`CoconetState` rows; the current state is the newest (``at``, then ``id``).
  Two sites setting the same child during a split both keep their row; after the
  merge the later one is current, and the whole history stays readable.
- A pickup (:class:`CoconetPickup`), a notice (:class:`CoconetNotice`) and each
  guardian's opening, confirmation or reply (:class:`CoconetCheck`) are events in
  the world that happened once: facts by nature. A notice is never edited; a
  correction is a newer notice.
- The :class:`CoconetEvent` itself is owned: opening one sends a message to every
  guardian (an owned row) and at most one may be open per school, which only one
  writer can guarantee. Closing is an update of the owned row. A peer that must
  open or close an event during a site loss does so after taking over the epoch,
  as for any owned data; serving and recording do not need that.

Actors are staff logins kept as text (not keys): a fact must stay meaningful after
the account is gone, and it must not depend on an owned row a peer may not have yet.
"""
import peewee

from appliance.models.base import FACTS, OWNED, BaseModel, UTCDateTimeField
from appliance.models.guardian import Guardian
from appliance.models.message import Message
from appliance.models.roster import Student
from appliance.models.school import School


class CoconetEvent(BaseModel):
    """A disaster (or drill) during which the school's CoCo-net page is on; kept after closing."""

    school = peewee.ForeignKeyField(School, backref="coconet_events")
    kind = peewee.CharField()
    title = peewee.CharField()
    body = peewee.TextField(default="")
    message = peewee.ForeignKeyField(Message, null=True, backref="coconet_events")
    opened_by = peewee.CharField()
    opened_at = UTCDateTimeField()
    closed_by = peewee.CharField(null=True)
    closed_at = UTCDateTimeField(null=True)

    class Meta:
        replication = OWNED

    @property
    def is_open(self) -> bool:
        """Whether the event still takes states, pickups and notices."""
        return self.closed_at is None


class CoconetState(BaseModel):
    """One child's state as set by staff; the newest per event and child is the current one."""

    event = peewee.ForeignKeyField(CoconetEvent, backref="states")
    student = peewee.ForeignKeyField(Student, backref="coconet_states")
    state = peewee.CharField()
    place = peewee.CharField(default="")
    note = peewee.CharField(default="")
    actor = peewee.CharField()
    site = peewee.CharField()
    at = UTCDateTimeField()

    class Meta:
        replication = FACTS


class CoconetPickup(BaseModel):
    """A child collected: by a registered guardian, or by another adult named by staff."""

    event = peewee.ForeignKeyField(CoconetEvent, backref="pickups")
    student = peewee.ForeignKeyField(Student, backref="coconet_pickups")
    guardian = peewee.ForeignKeyField(Guardian, null=True, backref="coconet_pickups")
    adult_name = peewee.CharField(default="")
    note = peewee.CharField(default="")
    collected_at = UTCDateTimeField()
    actor = peewee.CharField()
    site = peewee.CharField()
    at = UTCDateTimeField()

    class Meta:
        replication = FACTS


class CoconetNotice(BaseModel):
    """A timestamped post from the school to every guardian of the school."""

    event = peewee.ForeignKeyField(CoconetEvent, backref="notices")
    body = peewee.TextField()
    actor = peewee.CharField()
    site = peewee.CharField()
    at = UTCDateTimeField()

    class Meta:
        replication = FACTS


class CoconetCheck(BaseModel):
    """A guardian's read report: the page opened, "確認しました", or a short reply."""

    event = peewee.ForeignKeyField(CoconetEvent, backref="checks")
    guardian = peewee.ForeignKeyField(Guardian, backref="coconet_checks")
    kind = peewee.CharField()
    body = peewee.CharField(default="")
    site = peewee.CharField()
    at = UTCDateTimeField()

    class Meta:
        replication = FACTS
