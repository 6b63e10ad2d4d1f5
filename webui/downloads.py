"""Stored files (attachments, guardians' reply files) served as downloads with safe headers."""
from __future__ import annotations

from urllib.parse import quote

from flask import Response

# Never rendered as a page of this site, whatever the bytes are.
FILE_CSP = "default-src 'none'; sandbox"


def file_response(data: bytes, filename: str, content_type: str) -> Response:
    """A stored file as a download: never shown inline, never sniffed, never kept by a shared cache."""
    response = Response(data, mimetype=content_type)
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    response.headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
