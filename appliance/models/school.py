"""Schools and the staff who use the appliance for them."""
import peewee

from appliance.models.base import OWNED, BaseModel, BooleanField, UTCDateTimeField

ROLES = ("operator", "school_admin", "teacher")


class School(BaseModel):
    code = peewee.CharField(unique=True)
    name = peewee.CharField()
    grades = peewee.IntegerField(default=6)      # the top grade, who graduate at rollover
    school_year = peewee.IntegerField()          # the 年度 the roster is in (moved on by promote)
    created_at = UTCDateTimeField()

    class Meta:
        replication = OWNED


class StaffUser(BaseModel):
    school = peewee.ForeignKeyField(School, null=True, backref="staff")  # None: operator
    role = peewee.CharField(choices=[(r, r) for r in ROLES])
    login = peewee.CharField(unique=True)
    display_name = peewee.CharField(default="")
    password_hash = peewee.CharField()
    disabled = BooleanField(default=False)
    created_at = UTCDateTimeField()

    class Meta:
        replication = OWNED
