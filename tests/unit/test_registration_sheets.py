"""Registration sheets: one A4 page per child, QR codes that decode to the form and the empty mail."""
import io
import json

import pytest
import zxingcpp
from pypdf import PdfReader

from appliance import registration
from appliance.registration_sheets import render_sheets
from appliance.schools import add_school
from tests.conftest import add_students


@pytest.fixture
def students(app):
    school = add_school(app, "s1", "さくら小学校")
    return school, add_students(app, school, [(1, "1", n, f"山田 {n}郎") for n in (1, 2, 3)])


def test_a_class_sheet_has_a_page_per_child_whose_qr_codes_decode_to_its_codes(app, students):
    school, kids = students
    codes = registration.issue_codes(app, school, kids, actor="admin")
    pdf = PdfReader(io.BytesIO(render_sheets(app, school, kids, codes)))
    assert len(pdf.pages) == 3
    page = pdf.pages[1]
    text = page.extract_text()
    assert "さくら小学校" in text and "山田 2郎" in text and "docomo" in text and "SoftBank" in text
    assert "help@renraku.example" in text       # where a stuck guardian can write
    decoded = [b.text for image in page.images for b in zxingcpp.read_barcodes(image.image)]
    expected = []
    for slot in (1, 2):
        code = codes[kids[1].id, slot]
        assert registration.format_code(code) in text
        expected += [f"http://127.0.0.1:8080/e/{code}", f"mailto:entry-{code}@renraku.example"]
    assert sorted(decoded) == sorted(expected)


def test_the_cli_writes_a_class_and_refuses_to_void_live_codes_unasked(tmp_path, cli, roster_file):
    out = tmp_path / "3-1.pdf"
    assert cli("roster", "import", "--school", "S1", roster_file).exit_code == 0
    first = cli("registration", "sheets", "--school", "S1", "--class", "3-1", "--out", str(out))
    assert first.exit_code == 0, first.stderr
    pages = json.loads(first.stdout)["pages"]
    assert pages >= 1 and len(PdfReader(io.BytesIO(out.read_bytes())).pages) == pages
    again = cli("registration", "sheets", "--school", "S1", "--class", "3-1", "--out", str(out))
    assert again.exit_code == 1 and "再発行" in again.stderr
    assert cli("registration", "sheets", "--school", "S1", "--class", "3-1", "--out", str(out), "--reissue").exit_code == 0
    assert cli("registration", "sheets", "--school", "S1", "--class", "9-9", "--out", str(out)).exit_code == 1
