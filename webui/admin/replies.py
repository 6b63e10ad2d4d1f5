"""Guardians' free replies to a message, for the school: names, text, files; never an address.

Who sees them: whoever may see the message's follow-up (a teacher: their own messages).
"""
from __future__ import annotations

from flask import render_template

from appliance import replies
from webui.access import TEACHER, access
from webui.admin import bp
from webui.admin.messages import _message_or_404
from webui.downloads import file_response


@bp.get("/s/<code>/messages/<message_id>/replies")
@access(TEACHER)
def reply_index(code: str, message_id: str):
    """The replies to a message, newest first, with their files and (for mail) authentication results."""
    message = _message_or_404(message_id)
    return render_template("admin/reply_index.html", message=message, replies=replies.message_replies(message))


@bp.get("/s/<code>/messages/<message_id>/replies/files/<file_id>")
@access(TEACHER)
def reply_file_show(code: str, message_id: str, file_id: str):
    """Download a file a guardian sent with a reply to this message."""
    file = replies.get_file(_message_or_404(message_id).id, file_id)
    return file_response(bytes(file.data), file.filename, file.content_type)
