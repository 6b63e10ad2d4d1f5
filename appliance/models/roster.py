"""The roster: students, and the clubs, routes and custom groups they belong to.

Grade and class are attributes of the student, not stored groups: targeting treats
``grade:3`` and ``class:3-1`` like any other group, but there is no second copy of
who is in which class to keep in step at rollover.
"""
import peewee

from appliance.models.base import OWNED, BaseModel, UTCDateTimeField
from appliance.models.school import School


class Student(BaseModel):
    school = peewee.ForeignKeyField(School, backref="students")
    student_number = peewee.CharField(null=True)   # the school's stable number (学籍番号)
    grade = peewee.IntegerField()
    class_name = peewee.CharField()                # 組: "1", "2", "A" ...
    number = peewee.IntegerField()                 # 出席番号
    name = peewee.CharField()
    furigana = peewee.CharField(default="")
    status = peewee.CharField(default="enrolled")
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()

    class Meta:
        replication = OWNED

    @property
    def seat(self) -> str:
        """The student's place as staff say it: grade-class-number."""
        return seat_of(self.grade, self.class_name, self.number)


def seat_of(grade: int, class_name: str, number: int) -> str:
    """A student's place as staff say it: grade-class-number."""
    return f"{grade}-{class_name}-{number}"


class StudentGroup(BaseModel):
    school = peewee.ForeignKeyField(School, backref="groups")
    kind = peewee.CharField()
    key = peewee.CharField()      # as written in rules: club:KEY
    name = peewee.CharField()     # as shown to staff
    created_at = UTCDateTimeField()

    class Meta:
        replication = OWNED


class Membership(BaseModel):
    group = peewee.ForeignKeyField(StudentGroup, backref="memberships", on_delete="CASCADE")
    student = peewee.ForeignKeyField(Student, backref="memberships")

    class Meta:
        replication = OWNED
