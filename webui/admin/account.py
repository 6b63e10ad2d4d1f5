"""Signing in and out, and a user's own account: password, TOTP, language."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from appliance import staff
from appliance.errors import InvalidInput
from webui.access import PUBLIC, STAFF, access, safe_next
from webui.admin import bp
from webui.i18n import LOCALES


class SignInForm(FlaskForm):
    login = StringField(_l("ログイン名"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("パスワード"), validators=[DataRequired(), Length(max=256)])
    totp = StringField(_l("確認コード（2段階認証を設定した方のみ）"), validators=[Optional(), Length(max=10)])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("現在のパスワード"), validators=[DataRequired()])
    new = PasswordField(_l("新しいパスワード（10文字以上）"), validators=[DataRequired(), Length(min=10, max=256)])


class TotpForm(FlaskForm):
    code = StringField(_l("アプリに表示された6桁のコード"), validators=[DataRequired(), Length(min=6, max=10)])


class TotpOffForm(FlaskForm):
    password = PasswordField(_l("パスワード"), validators=[DataRequired()])


def _begin_session(user) -> None:
    session.clear()            # a fresh session on sign-in: nothing carried over from before
    session.permanent = True
    session["uid"], session["epoch"] = user.id, user.session_epoch


@bp.get("/login")
@access(PUBLIC)
def session_new():
    """The sign-in form."""
    if g.user is not None:
        return redirect(safe_next(request.args.get("next"), url_for("admin.home_show")))
    return render_template("admin/login.html", form=SignInForm())


@bp.post("/login")
@access(PUBLIC)
def session_create():
    """Sign in; repeated failures lock the account for a while."""
    form = SignInForm()
    if form.validate_on_submit():
        try:
            user = staff.authenticate(g.appliance, form.login.data, form.password.data, form.totp.data or "")
        except staff.SignInRefused as refused:
            flash(str(refused), "error")
        else:
            lang = session.get("lang")
            _begin_session(user)
            if lang:
                session["lang"] = lang
            return redirect(safe_next(request.args.get("next"), url_for("admin.home_show")))
    return render_template("admin/login.html", form=form), 400


@bp.post("/logout")
@access(STAFF)
def session_delete():
    """Sign out of this browser."""
    session.clear()
    flash(_("ログアウトしました"), "info")
    return redirect(url_for("admin.session_new"))


@bp.post("/logout-everywhere")
@access(STAFF)
def sessions_delete():
    """Sign out on every device (for a lost phone)."""
    staff.end_sessions(g.appliance, g.user, actor=g.user.login)
    session.clear()
    flash(_("すべての端末からログアウトしました"), "info")
    return redirect(url_for("admin.session_new"))


@bp.get("/account")
@access(STAFF)
def account_show():
    """The user's own settings."""
    return render_template("admin/account.html", password_form=PasswordForm(),
                           totp_on=g.user.totp_secret is not None, off_form=TotpOffForm())


@bp.post("/account/password")
@access(STAFF)
def password_update():
    """Change one's password; other devices are signed out, this one stays in."""
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            epoch = staff.change_password(g.appliance, g.user, form.current.data, form.new.data)
        except InvalidInput as error:
            flash(str(error), "error")
        else:
            session["epoch"] = epoch
            flash(_("パスワードを変更しました。ほかの端末はログアウトされました"), "info")
            return redirect(url_for("admin.account_show"))
    return render_template("admin/account.html", password_form=form,
                           totp_on=g.user.totp_secret is not None, off_form=TotpOffForm()), 400


@bp.get("/account/totp")
@access(STAFF)
def totp_new():
    """Start TOTP: show a new secret; it is kept in the session until confirmed."""
    secret = staff.new_totp_secret()
    session["totp_secret"] = secret
    return render_template("admin/totp.html", form=TotpForm(), secret=secret,
                           uri=staff.totp_uri(g.user, secret))


@bp.post("/account/totp")
@access(STAFF)
def totp_create():
    """Confirm the code from the authenticator app and turn TOTP on."""
    form, secret = TotpForm(), session.get("totp_secret")
    if secret and form.validate_on_submit():
        try:
            staff.enable_totp(g.appliance, g.user, secret, form.code.data)
        except InvalidInput as error:
            flash(str(error), "error")
        else:
            session.pop("totp_secret")
            flash(_("2段階認証を設定しました"), "info")
            return redirect(url_for("admin.account_show"))
    if not secret:
        return redirect(url_for("admin.totp_new"))
    return render_template("admin/totp.html", form=form, secret=secret,
                           uri=staff.totp_uri(g.user, secret)), 400


@bp.post("/account/totp/off")
@access(STAFF)
def totp_delete():
    """Turn TOTP off (the password is asked again)."""
    form = TotpOffForm()
    if form.validate_on_submit():
        try:
            staff.disable_totp(g.appliance, g.user, form.password.data)
        except InvalidInput as error:
            flash(str(error), "error")
        else:
            flash(_("2段階認証を解除しました"), "info")
    return redirect(url_for("admin.account_show"))


@bp.post("/lang")
@access(PUBLIC)
def locale_update():
    """Switch the UI language for this browser."""
    lang = request.form.get("lang")
    if lang in LOCALES:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next"), url_for("admin.home_show")))
