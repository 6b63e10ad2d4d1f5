"""Registration sheets: one A4 page per child with its codes, QR codes and how to let the school's mail through.

Each page names the school and the child and carries, per guardian slot, the one-time
code, a QR code of the web form with the code filled in, a QR code of the empty mail
(``mailto:entry-CODE@<mail domain>``) and both in text, then instructions in Japanese
for allowing the school's sending domain on docomo, au and SoftBank and on iPhone,
Android and Gmail. Drawn with reportlab in IPAex Gothic (Debian's fonts-ipaexfont-gothic:
a TrueType font reportlab can embed; Noto CJK ships as CFF, which it cannot). The QR
codes are PNG images (segno) so that a test can take them back out of the PDF.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

import peewee

from appliance.enquiries import enquiry_address
from appliance.errors import InvalidInput
from appliance.models import RegistrationCode, School, Student
from appliance.registration import count_live_codes, entry_address, format_code, issue_codes, registration_url

FONT = "IPAexGothic"
FONT_PATHS = ("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
              "/usr/share/fonts/truetype/ipaexfont-gothic/ipaexg.ttf")
QR_SIZE = 32 * mm

INTRODUCTION = ("学校からのお知らせや緊急連絡をメールでお届けします。保護者の方お一人につきコードを一つお使いください。"
                "QRコードを読み取るか、URLを開いてコードを入力するか、空メールを送ってください。届いたメールのリンクを開き、"
                "学校が確認すると登録が完了します。コードは一度だけ使えます。この用紙は他の人に見せないでください。")
# Carriers rename their menus now and then: the steps name the setting, not every tap.
INSTRUCTIONS = [
    ("迷惑メール設定のお願い", [
        "学校からのメールは「{domain}」から届きます。携帯電話会社の迷惑メール対策で、"
        "このドメインからのメールを受信できるように設定してから登録してください。",
    ]),
    ("docomo（ドコモメール）", [
        "My docomo →「メール設定」→「迷惑メール対策」→「受信リスト設定」で「{domain}」を登録。",
    ]),
    ("au（auメール）", [
        "auメールアプリ →「迷惑メールフィルター」→「受信リスト設定」で「{domain}」を登録。",
    ]),
    ("SoftBank（SoftBankメール / MMS）", [
        "My SoftBank →「メール設定」→「迷惑メール対策」→「受信許可リスト」で「{domain}」を登録。",
    ]),
    ("iPhone（iCloudメールなど）", [
        "通常は設定不要です。届かないときは「迷惑メール」フォルダを確かめ、「迷惑メールではない」に移してください。",
    ]),
    ("Android・Gmail", [
        "Gmailでは「迷惑メール」フォルダを確かめ、「迷惑メールではないことを報告」を押してください。",
        "連絡先に「noreply@{domain}」を登録すると確実です。キャリアメールは上の各社の設定をしてください。",
    ]),
]


def sheet_classes(app, school: School) -> list[tuple[int, str, int, int]]:
    """Return (grade, class, enrolled students, students with a live code) per class, in two grouped queries."""
    live = dict(((g, c), n) for g, c, n in (
        Student.select(Student.grade, Student.class_name, peewee.fn.COUNT(peewee.fn.DISTINCT(Student.id)))
        .join(RegistrationCode)
        .where((Student.school == school) & (Student.status == "enrolled") & (RegistrationCode.status == "active")
               & (RegistrationCode.expires_at > app.clock.now()))
        .group_by(Student.grade, Student.class_name).tuples()))
    return [(g, c, n, live.get((g, c), 0)) for g, c, n in (
        Student.select(Student.grade, Student.class_name, peewee.fn.COUNT(Student.id))
        .where((Student.school == school) & (Student.status == "enrolled"))
        .group_by(Student.grade, Student.class_name).order_by(Student.grade, Student.class_name).tuples())]


def issue_sheets(app, school: School, students: Sequence[Student], *, actor: str, reissue: bool = False) -> bytes:
    """Issue codes for the students and return their sheets; live codes are voided only when reissue is said."""
    live = count_live_codes(app, students)
    if live and not reissue:
        raise InvalidInput(f"まだ使える登録コードが{live}件あります。再発行すると、お配りした用紙のコードは使えなくなります。"
                           "再発行する場合は確認欄にチェックしてください")
    return render_sheets(app, school, students, issue_codes(app, school, students, actor=actor))


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        path = next((p for p in FONT_PATHS if Path(p).exists()), None)
        if path is None:
            raise RuntimeError("日本語フォントがありません: Debian の fonts-ipaexfont-gothic を入れてください")
        pdfmetrics.registerFont(TTFont(FONT, path))
    return FONT


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Break Japanese text into lines that fit the width (any character may start a line)."""
    lines, line = [], ""
    for char in text:
        if pdfmetrics.stringWidth(line + char, font, size) > width:
            lines.append(line)
            line = ""
        line += char
    return lines + [line] if line else lines


def qr_png(data: str) -> bytes:
    """Return a QR code of the data as a PNG (error correction M, a quiet zone of 4 modules)."""
    out = io.BytesIO()
    segno.make_qr(data, error="m").save(out, kind="png", scale=8, border=4)
    return out.getvalue()


def render_sheets(app, school: School, students: Sequence[Student], codes: dict[tuple[str, int], str]) -> bytes:
    """Return a PDF with one A4 page per student, one block per slot issued in codes."""
    font = _font()
    domain = app.config["mail"]["domain"]
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"{school.name} 連絡網 登録用紙")
    pdf.setCreator("Renraku")
    for student in students:
        slots = sorted(slot for (sid, slot) in codes if sid == student.id)
        _page(pdf, font, app, school, student, [(slot, codes[student.id, slot]) for slot in slots], domain)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def _page(pdf, font, app, school, student, slots, domain) -> None:
    width, height = A4
    left, y = 18 * mm, height - 20 * mm
    pdf.setFont(font, 11)
    pdf.drawString(left, y, school.name)
    y -= 10 * mm
    pdf.setFont(font, 18)
    pdf.drawString(left, y, "連絡網（学校からのメール連絡）登録のご案内")
    y -= 10 * mm
    pdf.setFont(font, 13)
    pdf.drawString(left, y, f"{student.grade}年{student.class_name}組 {student.number}番　{student.name} さんの保護者の方へ")
    y -= 8 * mm
    pdf.setFont(font, 9.5)
    for line in _wrap(INTRODUCTION, font, 9.5, width - 2 * left):
        pdf.drawString(left, y, line)
        y -= 5 * mm
    for slot, code in slots:
        y = _slot(pdf, font, app, left, y - 3 * mm, width - 2 * left, slot, code)
    y -= 4 * mm
    for title, lines in INSTRUCTIONS:
        pdf.setFont(font, 10.5)
        pdf.drawString(left, y, "■ " + title)
        y -= 5 * mm
        pdf.setFont(font, 9)
        for line in _wrap("".join(lines).format(domain=domain), font, 9, width - 2 * left - 4 * mm):
            pdf.drawString(left + 4 * mm, y, line)
            y -= 4.6 * mm
        y -= 1 * mm
    pdf.setFont(font, 8)
    pdf.drawString(left, 12 * mm, f"登録できないときのお問い合わせ: {app.config['web']['base_url'].rstrip('/')}/help"
                                  f"　メール: {enquiry_address(app)}")


def _slot(pdf, font, app, left, top, width, slot, code) -> float:
    """Draw one guardian slot's box; return the y below it."""
    box = QR_SIZE + 16 * mm
    pdf.roundRect(left, top - box, width, box, 3 * mm)
    url, address = registration_url(app, code), entry_address(app, code)
    pdf.setFont(font, 11)
    pdf.drawString(left + 4 * mm, top - 7 * mm, f"保護者{slot}")
    pdf.setFont(font, 10)
    pdf.drawString(left + 4 * mm, top - 14 * mm, "登録コード")
    pdf.setFont("Courier-Bold", 20)
    pdf.drawString(left + 4 * mm, top - 22 * mm, format_code(code))
    pdf.setFont(font, 8.5)
    pdf.drawString(left + 4 * mm, top - 31 * mm, "Webで登録:")
    pdf.drawString(left + 4 * mm, top - 35.5 * mm, url)
    pdf.drawString(left + 4 * mm, top - 41 * mm, "空メールで登録:")
    pdf.drawString(left + 4 * mm, top - 45.5 * mm, address)
    for n, (data, label) in enumerate(((url, "Webで登録"), (f"mailto:{address}", "空メールで登録"))):
        x = left + width - (2 - n) * (QR_SIZE + 4 * mm)
        pdf.drawImage(ImageReader(io.BytesIO(qr_png(data))), x, top - 4 * mm - QR_SIZE, QR_SIZE, QR_SIZE)
        pdf.drawCentredString(x + QR_SIZE / 2, top - 9 * mm - QR_SIZE, label)
    return top - box - 3 * mm
