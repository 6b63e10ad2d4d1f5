"""Attachments: which files a message may carry, judged by their content, and how much in total.

The type is read from the file's first bytes (and, for Office documents, the zip's
directory), never from the name or the type the browser claims: a guardian's phone
opens what the mail says it is. The name's extension must agree with the content, so
that mailers which go by the name show the same thing. Everything is checked before
anything is stored.
"""
from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.errors import InvalidInput

MAX_TOTAL_BYTES = 1024 * 1024     # per message, all attachments together
MAX_FILES = 10
MAX_FILENAME = 100                # characters

# content type -> the extensions a name may carry
KINDS = {
    "application/pdf": ("pdf",),
    "image/jpeg": ("jpg", "jpeg"),
    "image/png": ("png",),
    "image/gif": ("gif",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("xlsx",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ("pptx",),
}
ALLOWED_NAMES = "PDF, JPEG, PNG, GIF, Word (.docx), Excel (.xlsx), PowerPoint (.pptx)"

_MAGIC = [
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
]
# The folder each Office Open XML kind keeps its main part in.
_OFFICE_PARTS = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


@dataclass(frozen=True)
class CheckedFile:
    """A file accepted for a message: a clean name, the type found in its content, its bytes."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        """The size in bytes."""
        return len(self.data)


def check_files(files: Iterable[tuple[str, str, bytes]], *, already: int = 0, kept_files: int = 0) -> list[CheckedFile]:
    """Check (filename, claimed type, bytes) uploads; already is the bytes of attachments kept beside them.

    The claimed type is ignored: the content decides. Raise InvalidInput naming the
    first file refused.
    """
    checked = []
    total = already
    for filename, _claimed, data in files:
        name = clean_filename(filename)
        if not data:
            raise InvalidInput(f"「{name}」は空のファイルです")
        content_type = detect_type(data)
        if content_type is None:
            raise InvalidInput(f"「{name}」は添付できない種類のファイルです（添付できるのは {ALLOWED_NAMES}）")
        extension = name.rpartition(".")[2].lower() if "." in name else ""
        if extension not in KINDS[content_type]:
            raise InvalidInput(f"「{name}」はファイル名の拡張子と中身が合いません"
                               f"（中身は .{KINDS[content_type][0]} のファイルです）")
        total += len(data)
        checked.append(CheckedFile(name, content_type, data))
    if kept_files + len(checked) > MAX_FILES:
        raise InvalidInput(f"添付ファイルは{MAX_FILES}個までです")
    if total > MAX_TOTAL_BYTES:
        raise InvalidInput(f"添付ファイルは合計{format_size(MAX_TOTAL_BYTES)}までです（{format_size(total)}あります）")
    return checked


def detect_type(data: bytes) -> str | None:
    """Return the content type the bytes are, among KINDS, or None."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data.startswith(b"PK\x03\x04"):
        return _office_type(data)
    return None


def _office_type(data: bytes) -> str | None:
    # Only the zip's directory is read, never a member: no decompression, so no zip bomb.
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if "[Content_Types].xml" not in names or any(n.lower().endswith("vbaproject.bin") for n in names):
        return None     # not Office Open XML, or one with macros
    kinds = {content_type for prefix, content_type in _OFFICE_PARTS.items()
             if any(n.startswith(prefix) for n in names)}
    return kinds.pop() if len(kinds) == 1 else None


def clean_filename(filename: str) -> str:
    """The name as guardians will see it: no folders, no control or reserved characters, not too long."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rpartition("/")[2]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    if not name:
        return "attachment"
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        keep = MAX_FILENAME - len(dot + extension) if dot and len(extension) <= 10 else MAX_FILENAME
        name = (stem[:keep] + dot + extension) if dot and len(extension) <= 10 else name[:keep]
    return name


def format_size(size: int) -> str:
    """A size as staff read it: KB below a megabyte, MB from there."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}MB"
    return f"{max(1, round(size / 1024))}KB"

