"""All models, importable from one place; ALL_MODELS lists every table in dependency order."""
from appliance.models.base import BaseModel
from appliance.models.coconet import CoconetCheck, CoconetEvent, CoconetNotice, CoconetPickup, CoconetState
from appliance.models.facts import AuditEntry, DeliveryResult, Receipt, SurveyAnswer
from appliance.models.guardian import ContactPoint, Guardian, GuardianLink
from appliance.models.message import Attachment, Delivery, Message, NoticeTemplate, Recipient, SurveyQuestion
from appliance.models.registration import Enquiry, Registration, RegistrationCode
from appliance.models.reply import Reply, ReplyFile
from appliance.models.roster import Membership, Student, StudentGroup
from appliance.models.school import School, StaffAssignment, StaffUser
from appliance.models.token import CapabilityToken

ALL_MODELS = [
    School, StaffUser, StaffAssignment, Student, StudentGroup, Membership, Guardian, GuardianLink,
    ContactPoint, Message, NoticeTemplate, SurveyQuestion, Attachment, Recipient, Delivery,
    DeliveryResult, Receipt, SurveyAnswer, AuditEntry, CapabilityToken,
    CoconetEvent, CoconetState, CoconetPickup, CoconetNotice, CoconetCheck, Reply, ReplyFile,
    RegistrationCode, Registration, Enquiry,
]

__all__ = [m.__name__ for m in ALL_MODELS] + ["ALL_MODELS", "BaseModel"]
