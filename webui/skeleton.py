"""Pages kept ready: rendered once with a marker where each personal value goes, filled in per request.

A notice's page (``/r/``) is the same for every guardian who has not answered or
replied, but for their name and their link (in the forms' addresses and the form
token). During a burst every guardian of a school taps it within a minute, so the page
is rendered once per message and language, with a random marker for each personal
value, and each tap only joins the parts around the markers with its own values
(HTML-escaped). The markers are random per rendering, so no text of a message can
pass for one; they are letters and digits, which escaping and URL building leave as
they are. The values that go into addresses are link tokens, which are URL-safe too.
CoCo-net's page (``/c/``) is kept the same way, per shape: what its guardians' pages
share once their names, children and times are taken out (webui/coconet/guardian.py).

A page kept ready is also what the front (webui/front.py) answers without Flask: a
:class:`Ready` answer.
"""
from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from markupsafe import escape

if TYPE_CHECKING:
    from webui.group_commit import Write


class Ready(NamedTuple):
    """A guardian's page as the front answers it without Flask: the body and headers Flask would give
    (the private headers of ``locale`` and ``inline_style``: webui/capability.py), and the facts to commit
    before it goes out (webui/group_commit.py)."""

    body: bytes
    locale: str
    writes: list[Write]
    inline_style: str = ""
    etag: str = ""          # unquoted, as generate_etag makes it ("": none)


class Slot(str):
    """A marker standing for a personal value in a page being kept (a time, too: i18n.tokyo_time shows it as it is)."""


class Skeleton:
    """A rendered page cut at its markers: text parts and, between them, the names of the values."""

    def __init__(self, parts: list[bytes], slots: list[str]):
        self.parts, self.slots = parts, slots

    @classmethod
    def render(cls, render: Callable[[dict[str, str]], str], names: Iterable[str]) -> Skeleton:
        """Render a page (``render`` gets a marker per value name) and cut it at the markers."""
        nonce = secrets.token_hex(8)
        markers = {Slot(f"slot{nonce}{index}x"): name for index, name in enumerate(names)}
        text = render({name: marker for marker, name in markers.items()})
        pieces = re.split("(" + "|".join(markers) + ")", text)
        return cls([piece.encode() for piece in pieces[::2]], [markers[marker] for marker in pieces[1::2]])

    def fill(self, values: dict[str, str]) -> bytes:
        """Return the page with each value HTML-escaped in its places."""
        filled = [self.parts[0]]
        for name, part in zip(self.slots, self.parts[1:]):
            filled.append(str(escape(values[name])).encode())
            filled.append(part)
        return b"".join(filled)


class Skeletons:
    """The skeletons a worker keeps, by key (the least recently used go past `size`); shared by its threads.

    A CoCo-net event makes a shape per combination of a family's children's states (and whether each has a
    place, a note, a pickup) and of the guardian's confirmation and reply being there or not.
    """

    def __init__(self, size: int = 1024):
        self._kept: OrderedDict[Hashable, Skeleton] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Skeleton | None:
        with self._lock:
            skeleton = self._kept.get(key)
            if skeleton is not None:
                self._kept.move_to_end(key)
            return skeleton

    def kept(self, key: Hashable, render: Callable[[dict[str, str]], str], names: Iterable[str]) -> Skeleton:
        """The skeleton kept under ``key``; rendered (:meth:`Skeleton.render`) and kept first if there is none."""
        skeleton = self.get(key)
        if skeleton is None:
            skeleton = Skeleton.render(render, names)
            self.put(key, skeleton)
        return skeleton

    def put(self, key: Hashable, skeleton: Skeleton) -> None:
        with self._lock:
            self._kept[key] = skeleton
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
