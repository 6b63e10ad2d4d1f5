"""Schools and the staff who use the appliance for them."""
import peewee

from appliance.models.base import OWNED, BaseModel, BooleanField, UTCDateTimeField

ROLES = ("operator", "school_admin", "teacher")


class School(BaseModel):
    code = peewee.CharField(unique=True)
    name = peewee.CharField()
    grades = peewee.IntegerField(default=6)      # the top grade, who graduate at rollover
    school_year = peewee.IntegerField()          # the 年度 the roster is in (moved on by promote)
    teacher_needs_approval = BooleanField(default=True)
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
    failed_logins = peewee.IntegerField(default=0)
    locked_until = UTCDateTimeField(null=True)
    session_epoch = peewee.IntegerField(default=0)   # raised to end every session of the user
    totp_secret = peewee.BlobField(null=True)        # sealed; None when TOTP is off

    class Meta:
        replication = OWNED


class StaffAssignment(BaseModel):
    """A class ('1-2') or club a teacher composes to."""
    staff_user = peewee.ForeignKeyField(StaffUser, backref="assignments")
    kind = peewee.CharField()      # 'class' or 'club'
    value = peewee.CharField()

    class Meta:
        replication = OWNED
