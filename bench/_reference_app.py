"""The guardian burst's reference: a Flask view that answers a fixed 2.5 KB page and does nothing else.

bench/guardian_burst.py serves it with the same gunicorn command as the appliance and sends it
the same burst: what it costs is gunicorn's and Flask's share of every answer on this machine,
measured in the same run as the guardians' pages.
"""
from flask import Flask

app = Flask(__name__)
PAGE = "<!doctype html><title>reference</title><p>" + "連絡網" * 800


@app.get("/<kind>/<token>")
def page(kind: str, token: str) -> str:
    """The same answer for every link."""
    return PAGE
