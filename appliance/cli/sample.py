"""Sample data commands: `appliance demo` and `appliance bench seed`."""
from __future__ import annotations

import time
from dataclasses import asdict

import click

from appliance.cli.common import emit_json, pass_app
from appliance.demo import DEMO_CODE, route_mail_to_sink, run_drill, seed_bench, seed_demo


@click.command("demo")
@pass_app
def demo_command(app) -> None:
    """Seed a demo school with students, guardians, addresses and staff logins (once)."""
    result = seed_demo(app)
    if not route_mail_to_sink(app):
        click.echo("注意: appliance.toml に [mta] があるため、メールをキャプチャ用シンクへ回す設定を"
                   "追加していません。実在のアドレスへ送られないよう [mta] transport を確認してください。", err=True)
    emit_json({
        "created": result.created,
        "school": {"code": result.school_code, "name": result.school_name},
        "counts": {"grades": result.grades, "classes": result.classes, "students": result.students,
                   "guardians": result.guardians, "addresses": result.addresses},
        "logins_file": str(result.logins_file),
        "logins": [asdict(login) for login in result.logins],
    })
    if not result.logins:
        click.echo(f"ログイン情報のファイル {result.logins_file} がありません。"
                   "パスワードは `appliance user add` で作り直してください。", err=True)


@click.command("drill")
@click.option("--school", "school_code", default=DEMO_CODE, show_default=True)
@pass_app
def drill_command(app, school_code: str) -> None:
    """Run a CoCo-net drill at a school: open an event, mark 1-1 protected, hand a child over."""
    result = run_drill(app, school_code)
    base = app.config["web"]["base_url"].rstrip("/")
    emit_json({"event": result.event_id, "dashboard": base + result.dashboard_path,
               "guardian_view": result.guardian_url, "handed_over": result.handed_over,
               "by_state": result.by_state})


@click.group("bench")
def bench_group() -> None:
    """Data sets for the benchmarks in bench/."""


@bench_group.command("seed")
@click.option("--schools", default=90, show_default=True, type=click.IntRange(min=1))
@click.option("--guardians", default=40000, show_default=True, type=click.IntRange(min=1),
              help="Guardians in all, shared out over the schools.")
@click.option("--addresses", default=4, show_default=True, type=click.IntRange(1, 4),
              help="Active email addresses per guardian.")
@click.option("--seed", default=1, show_default=True, help="Same seed, same names and addresses.")
@pass_app
def bench_seed(app, schools: int, guardians: int, addresses: int, seed: int) -> None:
    """Create schools bench001... with students, clubs, routes, guardians and addresses, in bulk."""
    started = time.perf_counter()
    result = seed_bench(app, schools=schools, guardians=guardians, addresses=addresses, seed=seed)
    emit_json({**asdict(result), "seconds": round(time.perf_counter() - started, 2)})


COMMANDS = [demo_command, drill_command, bench_group]
