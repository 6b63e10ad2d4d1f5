"""Made-up but realistic school rosters for demos, tests and benchmarks; pure and deterministic.

A :class:`SampleGenerator` seeded with the same value yields the same rosters: Japanese
names with furigana (hiragana), families whose children (siblings in different grades
and classes) share the guardians' surname, clubs, commute routes, a committee, and
email addresses spread over carrier, free-mail and ISP domains as guardians' are.

Seeded addresses use real domains, so each one is made easy to find: its local part
carries the marker ``rk`` followed by a serial of seven (or more) digits, for example
``megumi.sato.rk0000042@docomo.ne.jp``. :data:`ADDRESS_MARKER` finds it; privacy tests
scan pages, exports and logs with it. Never send these addresses to real MX hosts.
"""
from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from itertools import accumulate

ADDRESS_MARKER = re.compile(r"rk\d{7}")

# (kanji, furigana, romaji), most common first; weights below follow that order.
SURNAMES = (
    ("佐藤", "さとう", "sato"), ("鈴木", "すずき", "suzuki"), ("高橋", "たかはし", "takahashi"),
    ("田中", "たなか", "tanaka"), ("伊藤", "いとう", "ito"), ("渡辺", "わたなべ", "watanabe"),
    ("山本", "やまもと", "yamamoto"), ("中村", "なかむら", "nakamura"), ("小林", "こばやし", "kobayashi"),
    ("加藤", "かとう", "kato"), ("吉田", "よしだ", "yoshida"), ("山田", "やまだ", "yamada"),
    ("佐々木", "ささき", "sasaki"), ("山口", "やまぐち", "yamaguchi"), ("松本", "まつもと", "matsumoto"),
    ("井上", "いのうえ", "inoue"), ("木村", "きむら", "kimura"), ("林", "はやし", "hayashi"),
    ("斎藤", "さいとう", "saito"), ("清水", "しみず", "shimizu"), ("山崎", "やまざき", "yamazaki"),
    ("森", "もり", "mori"), ("池田", "いけだ", "ikeda"), ("橋本", "はしもと", "hashimoto"),
    ("阿部", "あべ", "abe"), ("石川", "いしかわ", "ishikawa"), ("山下", "やました", "yamashita"),
    ("中島", "なかじま", "nakajima"), ("石井", "いしい", "ishii"), ("小川", "おがわ", "ogawa"),
    ("前田", "まえだ", "maeda"), ("岡田", "おかだ", "okada"), ("長谷川", "はせがわ", "hasegawa"),
    ("藤田", "ふじた", "fujita"), ("後藤", "ごとう", "goto"), ("近藤", "こんどう", "kondo"),
    ("村上", "むらかみ", "murakami"), ("遠藤", "えんどう", "endo"), ("青木", "あおき", "aoki"),
    ("坂本", "さかもと", "sakamoto"), ("福田", "ふくだ", "fukuda"), ("太田", "おおた", "ota"),
    ("西村", "にしむら", "nishimura"), ("藤井", "ふじい", "fujii"), ("金子", "かねこ", "kaneko"),
    ("岡本", "おかもと", "okamoto"), ("藤原", "ふじわら", "fujiwara"), ("中野", "なかの", "nakano"),
    ("三浦", "みうら", "miura"), ("原田", "はらだ", "harada"), ("竹内", "たけうち", "takeuchi"),
    ("小野", "おの", "ono"), ("田村", "たむら", "tamura"), ("和田", "わだ", "wada"),
)
_SURNAME_CUM_WEIGHTS = tuple(accumulate(1 / (rank + 8) for rank in range(len(SURNAMES))))

CHILD_NAMES = (
    ("蓮", "れん", "ren"), ("陽翔", "はると", "haruto"), ("湊", "みなと", "minato"),
    ("蒼", "あおい", "aoi"), ("樹", "いつき", "itsuki"), ("大和", "やまと", "yamato"),
    ("悠真", "ゆうま", "yuma"), ("朝陽", "あさひ", "asahi"), ("結翔", "ゆいと", "yuito"),
    ("颯真", "そうま", "soma"), ("陽太", "ようた", "yota"), ("悠人", "ゆうと", "yuto"),
    ("大翔", "ひろと", "hiroto"), ("律", "りつ", "ritsu"), ("新", "あらた", "arata"),
    ("奏太", "そうた", "sota"), ("陸", "りく", "riku"), ("蒼空", "そら", "sora"),
    ("航", "わたる", "wataru"), ("拓海", "たくみ", "takumi"), ("瑛太", "えいた", "eita"),
    ("陽葵", "ひまり", "himari"), ("凛", "りん", "rin"), ("結菜", "ゆいな", "yuina"),
    ("芽依", "めい", "mei"), ("紬", "つむぎ", "tsumugi"), ("咲良", "さくら", "sakura"),
    ("結衣", "ゆい", "yui"), ("莉子", "りこ", "riko"), ("美桜", "みお", "mio"),
    ("杏", "あん", "an"), ("心春", "こはる", "koharu"), ("陽菜", "ひな", "hina"),
    ("詩", "うた", "uta"), ("結月", "ゆづき", "yuzuki"), ("花", "はな", "hana"),
    ("楓", "かえで", "kaede"), ("彩葉", "いろは", "iroha"), ("莉緒", "りお", "rio"),
    ("一花", "いちか", "ichika"), ("七海", "ななみ", "nanami"), ("愛莉", "あいり", "airi"),
)
MOTHER_NAMES = (
    ("恵", "めぐみ", "megumi"), ("美穂", "みほ", "miho"), ("直美", "なおみ", "naomi"),
    ("由美子", "ゆみこ", "yumiko"), ("智子", "ともこ", "tomoko"), ("裕子", "ゆうこ", "yuko"),
    ("愛", "あい", "ai"), ("彩", "あや", "aya"), ("麻衣", "まい", "mai"),
    ("美咲", "みさき", "misaki"), ("沙織", "さおり", "saori"), ("瞳", "ひとみ", "hitomi"),
    ("陽子", "ようこ", "yoko"), ("友美", "ともみ", "tomomi"), ("千尋", "ちひろ", "chihiro"),
    ("絵美", "えみ", "emi"), ("香織", "かおり", "kaori"), ("奈美", "なみ", "nami"),
    ("由佳", "ゆか", "yuka"), ("里美", "さとみ", "satomi"), ("真由美", "まゆみ", "mayumi"),
    ("明日香", "あすか", "asuka"), ("舞", "まい", "mai"), ("梓", "あずさ", "azusa"),
)
FATHER_NAMES = (
    ("大輔", "だいすけ", "daisuke"), ("拓也", "たくや", "takuya"), ("健太", "けんた", "kenta"),
    ("翔太", "しょうた", "shota"), ("達也", "たつや", "tatsuya"), ("直樹", "なおき", "naoki"),
    ("和也", "かずや", "kazuya"), ("誠", "まこと", "makoto"), ("剛", "つよし", "tsuyoshi"),
    ("浩二", "こうじ", "koji"), ("隆", "たかし", "takashi"), ("亮", "りょう", "ryo"),
    ("雄一", "ゆういち", "yuichi"), ("聡", "さとし", "satoshi"), ("哲也", "てつや", "tetsuya"),
    ("健一", "けんいち", "kenichi"), ("雅人", "まさと", "masato"), ("貴之", "たかゆき", "takayuki"),
    ("慎也", "しんや", "shinya"), ("洋平", "ようへい", "yohei"), ("康平", "こうへい", "kohei"),
)

# Where guardians' registered addresses live, with rough weights: carrier mail still
# common among parents, free mail now the largest share, a tail of ISP mailboxes.
CARRIER_DOMAINS = {
    "docomo.ne.jp": 14, "ezweb.ne.jp": 6, "au.com": 5, "softbank.ne.jp": 5,
    "i.softbank.jp": 6, "ymobile.ne.jp": 3, "uqmobile.jp": 1, "rakumail.jp": 1,
}
FREE_MAIL_DOMAINS = {
    "gmail.com": 20, "yahoo.co.jp": 10, "icloud.com": 10, "me.com": 1,
    "outlook.jp": 2, "outlook.com": 1, "hotmail.co.jp": 2,
}
ISP_DOMAINS = {
    "nifty.com": 1, "biglobe.ne.jp": 1, "ocn.ne.jp": 1, "so-net.ne.jp": 1,
    "plala.or.jp": 1, "eonet.ne.jp": 1, "jcom.zaq.ne.jp": 1, "dion.ne.jp": 1,
}
DOMAINS = {**CARRIER_DOMAINS, **FREE_MAIL_DOMAINS, **ISP_DOMAINS}
_DOMAIN_NAMES = tuple(DOMAINS)
_DOMAIN_CUM_WEIGHTS = tuple(accumulate(DOMAINS.values()))

CLUBS = ("サッカー部", "吹奏楽部", "科学部", "陸上部", "バスケットボール部", "美術部")
ROUTES = ("北ルート", "南ルート", "東ルート", "西ルート", "中央ルート")
COMMITTEE = "図書委員"
CLUB_FROM_GRADE = 4         # クラブ活動 starts in the 4th grade
COMMITTEE_FROM_GRADE = 5
COMMITTEE_PER_CLASS = 2


@dataclass(frozen=True)
class SampleName:
    """A Japanese name: kanji, furigana in hiragana, and romaji for addresses."""

    surname: tuple[str, str, str]
    given: tuple[str, str, str]

    @property
    def name(self) -> str:
        """The name as written: surname, a space, given name."""
        return f"{self.surname[0]} {self.given[0]}"

    @property
    def furigana(self) -> str:
        """The reading in hiragana, surname first."""
        return f"{self.surname[1]} {self.given[1]}"


@dataclass(frozen=True)
class SampleStudent:
    name: SampleName
    grade: int
    class_name: str
    number: int                         # 出席番号, in furigana order within the class
    groups: tuple[tuple[str, str], ...]  # (kind, key) of each club, route, committee


@dataclass(frozen=True)
class SampleGuardian:
    name: SampleName
    relationship: str                   # 母 or 父
    emails: tuple[str, ...]
    children: tuple[int, ...]           # indices into SampleSchool.students


@dataclass(frozen=True)
class SampleSchool:
    grades: int
    classes: int
    students: tuple[SampleStudent, ...]     # in seat order
    guardians: tuple[SampleGuardian, ...]
    groups: tuple[tuple[str, str], ...]     # (kind, key); the key is also the name shown


class SampleGenerator:
    """Makes rosters from one seeded random stream; every address it makes is unique."""

    def __init__(self, seed: int | str, *, first_serial: int = 1):
        self.rng = random.Random(seed)
        self._serial = first_serial

    def make_school(self, *, grades: int, classes: int, guardians: int,
                    addresses: int | None = None) -> SampleSchool:
        """Return a roster with this many guardians, their children seated in grades and classes.

        Each guardian gets ``addresses`` email addresses, or 1-4 when it is None.
        """
        pupils, families = self._make_families(grades, guardians)
        seats = self._seat(pupils, classes)
        committee = self._pick_committee(seats)
        order = sorted(range(len(pupils)), key=lambda i: seats[i])
        new_index = {old: new for new, old in enumerate(order)}
        students = tuple(self._student(pupils[i], seats[i], i in committee) for i in order)
        sample_guardians = []
        for children, parents in families:
            child = pupils[children[0]][0]
            for name, rel in parents:
                count = addresses or self.rng.choices((1, 2, 3, 4), (50, 30, 15, 5))[0]
                emails = tuple(self._email(name, rel, child) for _ in range(count))
                sample_guardians.append(SampleGuardian(
                    name, rel, emails, tuple(sorted(new_index[c] for c in children))))
        groups = tuple(("club", club) for club in CLUBS if grades >= CLUB_FROM_GRADE) \
            + tuple(("route", route) for route in ROUTES) \
            + ((("custom", COMMITTEE),) if grades >= COMMITTEE_FROM_GRADE else ())
        return SampleSchool(grades, classes, students, tuple(sample_guardians), groups)

    def _make_families(self, grades: int, guardians: int):
        """Return pupils (name, grade, route) and families (pupil indices, (name, relationship) of parents)."""
        rng = self.rng
        per_grade = dict.fromkeys(range(1, grades + 1), 0)
        pupils: list[tuple[SampleName, int, str]] = []
        families: list[tuple[list[int], list[tuple[SampleName, str]]]] = []
        made = 0
        while made < guardians:
            surname = rng.choices(SURNAMES, cum_weights=_SURNAME_CUM_WEIGHTS)[0]
            size = min(grades, rng.choices((1, 2, 3), (60, 31, 9))[0])
            # Siblings go to the least filled grades, so classes come out even in size.
            chosen = sorted(per_grade, key=lambda g: (per_grade[g], rng.random()))[:size]
            route = rng.choice(ROUTES)   # siblings walk to school together
            children = []
            for grade, given in zip(chosen, rng.sample(CHILD_NAMES, size)):
                per_grade[grade] += 1
                children.append(len(pupils))
                pupils.append((SampleName(surname, given), grade, route))
            both = made + 2 <= guardians and rng.random() < 0.12
            relationships = ("母", "父") if both else rng.choices(("母", "父"), (80, 20))
            parents = [(SampleName(surname, rng.choice(MOTHER_NAMES if rel == "母" else FATHER_NAMES)), rel)
                       for rel in relationships]
            families.append((children, parents))
            made += len(parents)
        return pupils, families

    def _seat(self, pupils, classes: int) -> list[tuple[int, str, int]]:
        """Deal each grade's pupils into classes, numbered in furigana order as schools do."""
        seats: list[tuple[int, str, int]] = [(0, "", 0)] * len(pupils)
        grades = sorted({grade for _, grade, _ in pupils})
        for grade in grades:
            members = [i for i, (_, g, _) in enumerate(pupils) if g == grade]
            self.rng.shuffle(members)
            for c in range(classes):
                in_class = sorted(members[c::classes], key=lambda i: pupils[i][0].furigana)
                for number, i in enumerate(in_class, start=1):
                    seats[i] = (grade, str(c + 1), number)
        return seats

    def _pick_committee(self, seats) -> set[int]:
        """Choose the committee members: a few from each class of the upper grades."""
        by_class = defaultdict(list)
        for i, (grade, class_name, _) in enumerate(seats):
            if grade >= COMMITTEE_FROM_GRADE:
                by_class[grade, class_name].append(i)
        return {i for key in sorted(by_class)
                for i in self.rng.sample(by_class[key], min(COMMITTEE_PER_CLASS, len(by_class[key])))}

    def _student(self, pupil, seat, on_committee: bool) -> SampleStudent:
        name, grade, route = pupil
        _, class_name, number = seat
        groups = [("route", route)]
        if grade >= CLUB_FROM_GRADE and self.rng.random() < 0.9:
            groups.append(("club", self.rng.choice(CLUBS)))
        if on_committee:
            groups.append(("custom", COMMITTEE))
        return SampleStudent(name, grade, class_name, number, tuple(groups))

    def _email(self, name: SampleName, relationship: str, child: SampleName) -> str:
        """Return a new unique address in one of the shapes guardians use, with the marker."""
        rng = self.rng
        given, surname, kid = name.given[2], name.surname[2], child.given[2]
        base = rng.choice((f"{given}.{surname}", f"{surname}.{given}", f"{given}_{surname}",
                           f"{given[0]}.{surname}", f"{surname}-{given}",
                           f"{kid}.{'mama' if relationship == '母' else 'papa'}",
                           f"{surname}.family", f"{given}{rng.randint(70, 99)}"))
        domain = rng.choices(_DOMAIN_NAMES, cum_weights=_DOMAIN_CUM_WEIGHTS)[0]
        serial, self._serial = self._serial, self._serial + 1
        return f"{base}{rng.choice('.-_')}rk{serial:07d}@{domain}"
