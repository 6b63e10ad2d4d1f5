"""Attachments are judged by their content, limited to 1 MB in total, and named safely."""
import io
import zipfile

import pytest

from appliance.attachments import MAX_TOTAL_BYTES, check_files, clean_filename, detect_type
from appliance.errors import InvalidInput

PDF = b"%PDF-1.7\n" + b"0" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 100


def office(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("[Content_Types].xml",) + names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize("data, expected", [
    (PDF, "application/pdf"),
    (b"\xff\xd8\xff\xe0" + b"0" * 10, "image/jpeg"),
    (PNG, "image/png"),
    (b"GIF89a" + b"0" * 10, "image/gif"),
    (office("word/document.xml"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (office("xl/workbook.xml"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (office("word/document.xml", "word/vbaProject.bin"), None),     # macros
    (office("other/thing.xml"), None),
    (b"PK\x03\x04 not really a zip", None),
    (b"MZ\x90\x00 a windows program", None),
    (b"<html><script>alert(1)</script>", None),
])
def test_the_type_comes_from_the_content(data, expected):
    assert detect_type(data) == expected


def test_the_claimed_type_is_ignored_and_the_found_one_kept():
    [checked] = check_files([("お知らせ.pdf", "text/html", PDF)])
    assert (checked.filename, checked.content_type, checked.size) == ("お知らせ.pdf", "application/pdf", len(PDF))


@pytest.mark.parametrize("files, message", [
    ([("a.exe", "application/pdf", b"MZ\x90\x00")], "添付できない種類"),
    ([("photo.pdf", "application/pdf", PNG)], "拡張子と中身が合いません"),
    ([("empty.pdf", "application/pdf", b"")], "空のファイル"),
    ([("big.pdf", "application/pdf", PDF + b"0" * MAX_TOTAL_BYTES)], "合計1.0MBまで"),
    ([(f"{n}.png", "image/png", PNG) for n in range(11)], "10個まで"),
])
def test_refused_files_say_why(files, message):
    with pytest.raises(InvalidInput, match=message):
        check_files(files)


def test_the_limit_counts_attachments_already_kept():
    half = PDF + b"0" * (MAX_TOTAL_BYTES // 2)
    check_files([("a.pdf", "", half)])
    with pytest.raises(InvalidInput, match="合計"):
        check_files([("a.pdf", "", half)], already=MAX_TOTAL_BYTES // 2 + 1)


@pytest.mark.parametrize("given, cleaned", [
    ("C:\\fakepath\\お知らせ.pdf", "お知らせ.pdf"),
    ("../../etc/passwd.pdf", "passwd.pdf"),
    ('a"b<c>\r\n.pdf', "a_b_c___.pdf"),
    ("", "attachment"),
    ("あ" * 150 + ".pdf", "あ" * 96 + ".pdf"),
])
def test_file_names_are_cleaned(given, cleaned):
    assert clean_filename(given) == cleaned
