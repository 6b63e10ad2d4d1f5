"""Guardian look-up for the operator: find a guardian, see their children and contact points.

Searching by an address or number goes through the keyed lookup hashes (the table is
never decrypted to search); showing a guardian reveals their contact points through
appliance.contacts.reveal_contacts, which writes every view to the audit log.
"""
from __future__ import annotations

from flask import g, render_template, request
from flask_babel import lazy_gettext as _l

from appliance import contacts, guardians
from appliance.errors import InvalidInput
from webui.access import OPERATOR, access
from webui.admin import bp

LINK_LABELS = {"pending": _l("承認待ち"), "approved": _l("承認済み"), "rejected": _l("却下")}
KIND_LABELS = {"email": _l("メール"), "phone": _l("電話"), "fax": _l("FAX"), "push": _l("プッシュ通知")}
CONTACT_LABELS = {"pending": _l("確認待ち"), "active": _l("有効"), "suspended": _l("停止中（不達）")}


@bp.route("/guardians", methods=["GET", "POST"])
@access(OPERATOR)
def guardian_search():
    """Search by guardian or child name, or by an exact email address or phone number.

    The page's form posts, so an address searched for stays out of URLs, browser history
    and the web server's access log; ``?q=`` works too, for links.
    """
    text = request.values.get("q", "").strip()[:254]
    found, error = None, None
    if text:
        try:
            found = guardians.search_guardians(g.appliance, text, actor=g.user.login)
        except InvalidInput as refused:
            error = str(refused)
    return render_template("admin/guardian_search.html", q=text, found=found, error=error,
                           link_labels=LINK_LABELS), 400 if error else 200


@bp.get("/guardians/<guardian_id>")
@access(OPERATOR)
def guardian_show(guardian_id: str):
    """A guardian's children, link states and contact points; every view is audited."""
    guardian = guardians.get_guardian(guardian_id)
    links = guardians.children_of([guardian.id])[guardian.id]
    revealed = contacts.reveal_contacts(g.appliance, guardian.id, actor=g.user.login)
    return render_template("admin/guardian_show.html", guardian=guardian, links=links, contacts=revealed,
                           link_labels=LINK_LABELS, kind_labels=KIND_LABELS, contact_labels=CONTACT_LABELS)
