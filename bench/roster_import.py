"""Roster import at the size of a large city's schools: 40,000 students in one CP932 file.

Run: .venv/bin/python bench/roster_import.py [--students N] [--guardians]
Prints the seconds of the first import, of an idempotent re-import, and of a re-import
that gives every student another seat (a new year imported without `roster promote`).
Asserts nothing.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import random
import tempfile
import time

from appliance import db
from appliance.roster_import import import_roster
from appliance.runtime import init_data_dir
from appliance.schools import add_school

SURNAMES = [("佐藤", "さとう"), ("鈴木", "すずき"), ("高橋", "たかはし"), ("田中", "たなか"), ("伊藤", "いとう"),
            ("渡辺", "わたなべ"), ("山本", "やまもと"), ("中村", "なかむら"), ("小林", "こばやし"), ("加藤", "かとう"),
            ("吉田", "よしだ"), ("山田", "やまだ"), ("佐々木", "ささき"), ("山口", "やまぐち"), ("松本", "まつもと"),
            ("井上", "いのうえ"), ("木村", "きむら"), ("林", "はやし"), ("斎藤", "さいとう"), ("清水", "しみず"),
            ("山崎", "やまざき"), ("森", "もり"), ("池田", "いけだ"), ("橋本", "はしもと"), ("阿部", "あべ"),
            ("石川", "いしかわ"), ("髙田", "たかだ"), ("前田", "まえだ"), ("藤田", "ふじた"), ("小川", "おがわ")]
GIVEN = [("翔太", "しょうた"), ("蓮", "れん"), ("大翔", "ひろと"), ("悠真", "ゆうま"), ("湊", "みなと"),
         ("陽翔", "はると"), ("樹", "いつき"), ("悠人", "ゆうと"), ("颯太", "そうた"), ("結衣", "ゆい"),
         ("陽菜", "ひな"), ("結菜", "ゆいな"), ("葵", "あおい"), ("凛", "りん"), ("さくら", "さくら"),
         ("芽依", "めい"), ("美咲", "みさき"), ("花子", "はなこ"), ("太郎", "たろう"), ("莉子", "りこ"),
         ("健太", "けんた"), ("彩花", "あやか"), ("拓海", "たくみ"), ("七海", "ななみ"), ("大輝", "だいき")]
CLUBS = ["サッカー部", "野球部", "合唱部", "美術部", "科学部", "バスケットボール部", "吹奏楽部", "陸上部"]
ROUTES = ["北口", "南口", "東通り", "西通り", "駅前", "川沿い", "団地", "山手"]
CLASS_SIZE = 35


def make_roster(students: int, with_guardians: bool, *, reseat: bool = False, seed: int = 7) -> bytes:
    """Return a CP932 roster over grades 1-6, 35 to a class; `reseat` reverses each grade's seats."""
    rng = random.Random(seed)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    header = ["学年", "組", "出席番号", "氏名", "ふりがな", "学籍番号", "部活動", "通学路"]
    writer.writerow(header + (["保護者氏名", "メール1", "メール2"] if with_guardians else []))
    per_grade = -(-students // 6)
    serial = itertools.count(100001)
    for index in range(students):
        grade, place = divmod(index, per_grade)
        place = per_grade - 1 - place if reseat else place
        class_no, number = divmod(place, CLASS_SIZE)
        family = index // 2   # two siblings to a family
        (surname, sur_kana), (given, given_kana) = SURNAMES[family % len(SURNAMES)], rng.choice(GIVEN)
        clubs = ";".join(rng.sample(CLUBS, rng.choice((0, 1, 1, 2)))) if grade >= 3 else ""
        row = [grade + 1, class_no + 1, number + 1, f"{surname}　{given}", f"{sur_kana} {given_kana}",
               next(serial), clubs, rng.choice(ROUTES)]
        if with_guardians:
            row += [f"{surname}　保護者{family}", f"parent{family}@example.jp", f"parent{family}@mobile.example.jp"]
        writer.writerow(row)
    return out.getvalue().encode("cp932")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40_000)
    parser.add_argument("--guardians", action="store_true", help="Also import a guardian per two students.")
    args = parser.parse_args()
    data = make_roster(args.students, args.guardians)
    reseated = make_roster(args.students, args.guardians, reseat=True)
    print(f"roster: {args.students} students, {len(data) / 1e6:.1f} MB CP932, guardians={args.guardians}")
    with tempfile.TemporaryDirectory(prefix="renraku-bench-") as tmp:
        app = init_data_dir(f"{tmp}/data", environ={}, overrides={"site": {"name": "bench"}})
        school = add_school(app, "BENCH", "ベンチ市立小学校", grades=6)
        try:
            for label, roster in (("first import", data), ("re-import", data), ("re-seated", reseated)):
                started = time.perf_counter()
                summary = import_roster(app, school, roster, with_guardians=args.guardians)
                seconds = time.perf_counter() - started
                print(f"{label:>12}: {seconds:6.2f} s  {args.students / seconds:8.0f} rows/s  {summary}")
        finally:
            db.close_database()


if __name__ == "__main__":
    main()
