"""Pages the front (webui/front.py) runs on its threads rather than in its event loop.

The front runs every request without a body in its loop, one at a time, which suits
pages of a few milliseconds. A few staff pages are long and rare: a whole school's
print view takes ~0.4 s, an export grows with the roster. In the loop, one of them
would hold every guardian's tap on that worker for as long, in the middle of a burst;
on a thread it takes turns with them for the interpreter and only its own answer waits.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Flask


def off_loop(view: Callable) -> Callable:
    """Mark a view as long: the front runs it on a thread (put it under the route, like ``access``)."""
    view.off_loop = True
    return view


def off_loop_endpoints(app: Flask) -> frozenset[str]:
    """The endpoints whose views are marked (the mark survives decorators that use functools.wraps)."""
    return frozenset(name for name, view in app.view_functions.items() if getattr(view, "off_loop", False))
