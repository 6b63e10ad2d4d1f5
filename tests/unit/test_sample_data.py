"""The sample roster generator: deterministic, unique marked addresses, realistic shapes."""
import re
from collections import Counter

import pytest

from appliance.contacts import normalise
from appliance.sample_data import (
    ADDRESS_MARKER, CARRIER_DOMAINS, DOMAINS, FREE_MAIL_DOMAINS, ISP_DOMAINS, SampleGenerator,
)

HIRAGANA_NAME = re.compile(r"^[\u3041-\u3096ー]+ [\u3041-\u3096ー]+$")


@pytest.fixture(scope="module")
def school():
    return SampleGenerator(7).make_school(grades=6, classes=3, guardians=400)


def emails_of(school):
    return [email for guardian in school.guardians for email in guardian.emails]


def test_same_seed_gives_the_same_school():
    first = SampleGenerator("x").make_school(grades=6, classes=3, guardians=100)
    again = SampleGenerator("x").make_school(grades=6, classes=3, guardians=100)
    other = SampleGenerator("y").make_school(grades=6, classes=3, guardians=100)
    assert first == again
    assert first != other


def test_guardian_count_is_exact(school):
    assert len(school.guardians) == 400


def test_addresses_are_unique_ascii_valid_and_marked_once(school):
    emails = emails_of(school)
    assert len(set(emails)) == len(emails)
    for email in emails:
        assert email.isascii()
        assert normalise("email", email) == email
        local = email.partition("@")[0]
        assert len(ADDRESS_MARKER.findall(local)) == 1


def test_addresses_stay_unique_across_schools_and_serial_ranges():
    generator = SampleGenerator(1)
    later = SampleGenerator(1, first_serial=1_000_000)
    schools = [generator.make_school(grades=6, classes=3, guardians=50) for _ in range(3)]
    emails = [e for school in schools for e in emails_of(school)]
    emails += emails_of(later.make_school(grades=6, classes=3, guardians=50))
    assert len(set(emails)) == len(emails)


def test_guardians_have_one_to_four_addresses_unless_told(school):
    counts = Counter(len(g.emails) for g in school.guardians)
    assert set(counts) == {1, 2, 3, 4}
    fixed = SampleGenerator(2).make_school(grades=6, classes=3, guardians=30, addresses=4)
    assert {len(g.emails) for g in fixed.guardians} == {4}


def test_domains_spread_over_carriers_free_mail_and_isps(school):
    assert len(DOMAINS) >= 20
    domains = Counter(email.partition("@")[2] for email in emails_of(school))
    assert len(domains) >= 18
    assert set(domains) & set(CARRIER_DOMAINS)
    assert set(domains) & set(FREE_MAIL_DOMAINS)
    assert set(domains) & set(ISP_DOMAINS)
    assert domains.most_common(1)[0][1] < 0.3 * sum(domains.values())


def test_furigana_is_hiragana(school):
    for student in school.students:
        assert HIRAGANA_NAME.match(student.name.furigana), student.name.furigana
    for guardian in school.guardians:
        assert HIRAGANA_NAME.match(guardian.name.furigana), guardian.name.furigana


def test_siblings_share_the_surname_and_sit_in_different_grades(school):
    families = [g for g in school.guardians if len(g.children) > 1]
    assert any(len(g.children) == 3 for g in families)
    assert len(families) > len(school.guardians) // 5
    for guardian in school.guardians:
        children = [school.students[i] for i in guardian.children]
        assert {c.name.surname for c in children} == {guardian.name.surname}
        assert len({c.grade for c in children}) == len(children)
    assert any(len({school.students[i].class_name for i in g.children}) > 1 for g in families)


def test_classes_are_even_and_numbered_in_furigana_order(school):
    classes: dict[tuple[int, str], list] = {}
    for student in school.students:
        classes.setdefault((student.grade, student.class_name), []).append(student)
    assert set(classes) == {(g, str(c)) for g in range(1, 7) for c in range(1, 4)}
    sizes = [len(members) for members in classes.values()]
    assert max(sizes) - min(sizes) <= 2
    for members in classes.values():
        assert [s.number for s in members] == list(range(1, len(members) + 1))
        assert [s.name.furigana for s in members] == sorted(s.name.furigana for s in members)


def test_groups_routes_for_all_clubs_from_fourth_grade(school):
    kinds = {kind for kind, _ in school.groups}
    assert kinds == {"club", "route", "custom"}
    for student in school.students:
        assert [kind for kind, _ in student.groups].count("route") == 1
        assert set(student.groups) <= set(school.groups)
        if student.grade < 4:
            assert all(kind == "route" for kind, _ in student.groups)
    committee = Counter((s.grade, s.class_name) for s in school.students if ("custom", "図書委員") in s.groups)
    assert committee == {(g, str(c)): 2 for g in (5, 6) for c in range(1, 4)}
