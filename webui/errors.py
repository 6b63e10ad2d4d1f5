"""One place that turns errors into pages: a clear message in the user's language, never a trace."""
from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from appliance.errors import ApplianceError, NotFound


def _page(status: int, title: str, detail: str):
    if request.path.endswith(".json") or request.accept_mimetypes.best == "application/json":
        return {"error": title, "detail": detail}, status
    return render_template("error.html", title=title, detail=detail, status=status), status


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(CSRFError)
    def csrf_failed(_error):
        return _page(400, _("画面の有効期限が切れました"),
                     _("前の画面に戻り、再読み込みしてからもう一度送信してください。"))

    @app.errorhandler(ApplianceError)
    def refused(error):
        # The core's messages are written for the user (Japanese first) and hold no contact data.
        status = 404 if isinstance(error, NotFound) else 400
        return _page(status, _("処理できませんでした"), str(error))

    @app.errorhandler(HTTPException)
    def http_error(error):
        titles = {
            403: _("この画面を開く権限がありません"),
            404: _("ページが見つかりません"),
            405: _("この操作はできません"),
            413: _("送信されたデータが大きすぎます"),
            429: _("操作が多すぎます。しばらく待ってからお試しください"),
        }
        return _page(error.code or 500, titles.get(error.code, _("エラーが発生しました")), "")

    @app.errorhandler(Exception)
    def unexpected(error):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _page(500, _("エラーが発生しました"),
                     _("時間をおいてもう一度お試しください。続く場合はサポート窓口に連絡してください。"))
