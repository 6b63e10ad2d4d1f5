"""Targeting: who a message goes to, written as a rule over the school's groups.

The canonical form uses upper-case keywords::

    grade:3 AND route:north OR club:soccer
    class:3-1 AND NOT (club:"サッカー部" OR group:"PTA 役員")

Grammar (keywords are case-insensitive; ``&``, ``|`` and ``!`` are accepted as
AND, OR and NOT)::

    rule  := or
    or    := and ("OR" and)*
    and   := not ("AND" not)*
    not   := "NOT" not | atom
    atom  := "(" or ")" | "all" | KIND ":" VALUE
    KIND  := grade | class | club | route | group
    VALUE := a run of characters without spaces, parentheses, quotes or & | !
             | '"' any characters, with \\" and \\\\ as escapes '"'

``grade:3`` is a grade, ``class:3-1`` grade 3 class "1"; ``club``, ``route`` and
``group`` (custom groups) name a StudentGroup by its key. A rule resolves to the
school's enrolled students, and through their approved guardian links to guardians,
in a fixed number of portable SQL queries whatever the roster's size.
"""
from __future__ import annotations

from dataclasses import dataclass

import peewee

from appliance.errors import InvalidInput, NotFound
from appliance.models import GuardianLink, Membership, Student, StudentGroup

MAX_LENGTH = 2000   # characters; a rule is typed by staff, not generated
MAX_DEPTH = 50      # nested parentheses and NOTs
MAX_TERMS = 200     # keeps the SQL well inside SQLite's and PostgreSQL's expression limits
MAX_GRADE = 12      # as the school table allows

KINDS = ("all", "grade", "class", "club", "route", "group")
GROUP_WORDS = {"club": "club", "route": "route", "group": "custom"}   # rule word -> StudentGroup.kind
_RULE_WORDS = {kind: word for word, kind in GROUP_WORDS.items()}
_KEYWORDS = {"and": "AND", "or": "OR", "not": "NOT", "&": "AND", "|": "OR", "!": "NOT"}
_DELIMITERS = set('()"&|!')


class RuleError(InvalidInput):
    """A rule that cannot be read; position is the 1-based character where reading stopped."""

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message if position is None else f"{message}（{position}文字目）")
        self.position = position


class UnknownGroups(NotFound):
    """The rule names clubs, routes or groups the school does not have."""

    def __init__(self, names: list[str]):
        super().__init__(f"この学校にないグループがあります: {', '.join(names)}")
        self.names = names


@dataclass(frozen=True)
class All:
    """Every enrolled student of the school."""


@dataclass(frozen=True)
class Grade:
    """Students of one grade: ``grade:3``."""

    grade: int


@dataclass(frozen=True)
class SchoolClass:
    """Students of one class: ``class:3-1``."""

    grade: int
    class_name: str


@dataclass(frozen=True)
class InGroup:
    """Members of a club, route or custom group: ``club:soccer``."""

    kind: str     # a StudentGroup.kind: club, route or custom
    key: str


@dataclass(frozen=True)
class Not:
    """Students the inner rule does not target."""

    rule: Rule


@dataclass(frozen=True)
class And:
    """Students every inner rule targets."""

    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Or:
    """Students any inner rule targets."""

    rules: tuple[Rule, ...]


Rule = All | Grade | SchoolClass | InGroup | Not | And | Or


@dataclass(frozen=True)
class _Token:
    kind: str              # "(", ")", "AND", "OR", "NOT", "TERM" or "END"
    position: int          # 1-based
    text: str              # as written, for messages
    rule: Rule | None = None


def parse_rule(text: str) -> Rule:
    """Read a targeting rule into its syntax tree, or raise RuleError saying where and why."""
    if len(text) > MAX_LENGTH:
        raise RuleError(f"条件が長すぎます（{MAX_LENGTH}文字まで、指定は{len(text)}文字）")
    tokens = _tokenize(text)
    if tokens[0].kind == "END":
        raise RuleError("条件が空です: all、grade:3、club:soccer のように書いてください")
    if sum(token.kind == "TERM" for token in tokens) > MAX_TERMS:
        raise RuleError(f"条件の項目が多すぎます（{MAX_TERMS}個まで）")
    return _Parser(tokens).parse()


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(_Token(char, i + 1, char))
            i += 1
        elif char in "&|!":
            tokens.append(_Token(_KEYWORDS[char], i + 1, char))
            i += 1
        elif char == '"':
            raise RuleError("「\"」で始まる値の前に「種類:」が必要です（例: club:\"サッカー部\"）", i + 1)
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _DELIMITERS:
                i += 1
            word = text[start:i]
            if word.lower() in _KEYWORDS:
                tokens.append(_Token(_KEYWORDS[word.lower()], start + 1, word))
                continue
            kind, colon, value = word.partition(":")
            if colon and not value and i < n and text[i] == '"':
                value, i = _read_quoted(text, i)
            tokens.append(_Token("TERM", start + 1, text[start:i],
                                 _make_term(kind.lower(), colon, value, text[start:i], start + 1)))
    tokens.append(_Token("END", n + 1, ""))
    return tokens


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Return the value of the quoted string opening at start, and the index after it."""
    chars = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(chars), i + 1
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            i += 1
            char = text[i]
        chars.append(char)
        i += 1
    raise RuleError(f"「\"」（{start + 1}文字目）を閉じる「\"」がありません", len(text) + 1)


def _make_term(kind: str, colon: str, value: str, written: str, position: int) -> Rule:
    if kind == "all" and not colon:
        return All()
    if kind == "all":
        raise RuleError(f"all には値を付けません: 「{written}」", position)
    if not colon:
        raise RuleError(f"「{written}」は条件として読めません: 種類:値 の形で書いてください（例: club:soccer）",
                        position)
    if kind not in KINDS:
        raise RuleError(f"不明な種類「{kind}」: {', '.join(KINDS)} が使えます", position)
    if not value:
        raise RuleError(f"「{written}」の値がありません", position)
    if kind == "grade":
        return Grade(_grade(value, written, position))
    if kind == "class":
        grade, dash, class_name = value.partition("-")
        if not (dash and class_name):
            raise RuleError(f"組は 学年-組 の形で書いてください（例: class:3-1）: 「{written}」", position)
        return SchoolClass(_grade(grade, written, position), class_name)
    return InGroup(GROUP_WORDS[kind], value)


def class_key(grade: int, class_name: str) -> tuple:
    """Sort key for classes: by grade, then "2" before "10", then lettered classes."""
    return (grade, (0, int(class_name), "") if class_name.isdigit() else (1, 0, class_name))


def parse_class(value: str) -> tuple[int, str] | None:
    """Read a class written "G-C" (grade-class, as staff say it); None when it is not one."""
    grade, _, name = value.strip().partition("-")
    if not grade.isdigit() or not name:
        return None
    return int(grade), name


def _grade(value: str, written: str, position: int) -> int:
    # The length check keeps int() cheap and the value inside a 64-bit column.
    if not (value.isdecimal() and len(value) <= 2 and 1 <= int(value) <= MAX_GRADE):
        raise RuleError(f"学年は1〜{MAX_GRADE}の数字で書いてください: 「{written}」", position)
    return int(value)


class _Parser:
    """Recursive descent over the tokens; depth is capped, so Python's recursion limit is never near."""

    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def parse(self) -> Rule:
        rule = self.parse_or()
        token = self.peek()
        if token.kind == ")":
            raise RuleError("対応する「(」のない「)」があります", token.position)
        if token.kind != "END":
            raise RuleError(f"「{token.text}」の前に AND か OR が必要です", token.position)
        return rule

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError(f"括弧や NOT の入れ子が深すぎます（{MAX_DEPTH}段まで）", token.position)

    def parse_or(self) -> Rule:
        rules = [self.parse_and()]
        while self.peek().kind == "OR":
            self.advance()
            rules.append(self.parse_and())
        return rules[0] if len(rules) == 1 else Or(tuple(rules))

    def parse_and(self) -> Rule:
        rules = [self.parse_not()]
        while self.peek().kind == "AND":
            self.advance()
            rules.append(self.parse_not())
        return rules[0] if len(rules) == 1 else And(tuple(rules))

    def parse_not(self) -> Rule:
        if self.peek().kind != "NOT":
            return self.parse_atom()
        self.enter(self.advance())
        rule = Not(self.parse_not())
        self.depth -= 1
        return rule

    def parse_atom(self) -> Rule:
        token = self.advance()
        if token.kind == "TERM":
            return token.rule
        if token.kind == "(":
            self.enter(token)
            rule = self.parse_or()
            closing = self.advance()
            if closing.kind == "END":
                raise RuleError(f"「)」がありません: {token.position}文字目の「(」が閉じられていません",
                                closing.position)
            if closing.kind != ")":
                raise RuleError(f"「{closing.text}」の前に AND、OR か「)」が必要です", closing.position)
            self.depth -= 1
            return rule
        if token.kind == "END":
            previous = self.tokens[self.index - 2].text
            raise RuleError(f"「{previous}」の後に条件がありません", token.position)
        raise RuleError(f"「{token.text}」の前に条件が必要です", token.position)


def student_condition(school, rule: Rule) -> peewee.Node:
    """Return the WHERE expression over Student for the school's enrolled students the rule targets."""
    return (Student.school == school) & (Student.status == "enrolled") & _condition(rule, _group_ids(school, rule))


def student_query(school, rule: Rule) -> peewee.ModelSelect:
    """Return a SELECT of the ids of the school's enrolled students the rule targets."""
    return Student.select(Student.id).where(student_condition(school, rule))


def guardian_query(school, rule: Rule) -> peewee.ModelSelect:
    """Return a SELECT of the distinct ids of guardians with an approved link to a targeted student."""
    return _guardians_of(student_query(school, rule))


def count_audience(school, rule: Rule) -> dict[str, int]:
    """Return how many students and guardians the rule reaches at this school."""
    students = student_query(school, rule)
    return {"students": students.count(), "guardians": _guardians_of(students).count()}


def _guardians_of(students: peewee.ModelSelect) -> peewee.ModelSelect:
    return (GuardianLink.select(GuardianLink.guardian)
            .where((GuardianLink.status == "approved") & GuardianLink.student.in_(students))
            .distinct())


def _group_ids(school, rule: Rule) -> dict[tuple[str, str], str]:
    """Find every group the rule names with one query; raise UnknownGroups naming those missing."""
    wanted = list(dict.fromkeys(_named_groups(rule)))
    if not wanted:
        return {}
    rows = (StudentGroup.select(StudentGroup.id, StudentGroup.kind, StudentGroup.key)
            .where((StudentGroup.school == school) & StudentGroup.key.in_({key for _, key in wanted}))
            .tuples())
    found = {(kind, key): group_id for group_id, kind, key in rows}
    missing = [f"{_RULE_WORDS[kind]}:{key}" for kind, key in wanted if (kind, key) not in found]
    if missing:
        raise UnknownGroups(missing)
    return found


def _named_groups(rule: Rule):
    match rule:
        case InGroup(kind=kind, key=key):
            yield kind, key
        case Not(rule=inner):
            yield from _named_groups(inner)
        case And(rules=rules) | Or(rules=rules):
            for inner in rules:
                yield from _named_groups(inner)


def _condition(rule: Rule, group_ids: dict[tuple[str, str], str]) -> peewee.Node:
    """Compile the rule into one WHERE expression over Student."""
    match rule:
        case All():
            return peewee.SQL("TRUE")
        case Grade(grade=grade):
            return Student.grade == grade
        case SchoolClass(grade=grade, class_name=class_name):
            return (Student.grade == grade) & (Student.class_name == class_name)
        case InGroup(kind=kind, key=key):
            members = Membership.select(Membership.student).where(Membership.group == group_ids[kind, key])
            return Student.id.in_(members)
        case Not(rule=inner):
            return peewee.Negated(peewee.EnclosedNodeList([_condition(inner, group_ids)]))
        case And(rules=rules):
            # Flat lists rather than nested binary expressions: no deep trees for long chains.
            return peewee.NodeList([_condition(r, group_ids) for r in rules], " AND ", parens=True)
        case Or(rules=rules):
            return peewee.NodeList([_condition(r, group_ids) for r in rules], " OR ", parens=True)
    raise TypeError(f"not a rule: {rule!r}")
