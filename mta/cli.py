"""`appliance mta|dkim|dns ...` commands, added to the core CLI through entry points."""
from __future__ import annotations

import click

from appliance.cli.common import emit_json, pass_app, stop_signal
from appliance.clock import to_tokyo
from appliance.dkim_keys import ascii_domain, rsa_key_path
from appliance.dns_records import dkim_records, dns_records, zone_text
from mta import service
from mta.dkim import make_keys
from mta.inbound import controller_for
from mta.sink import read_captured, start_sink


@click.group("mta")
def mta() -> None:
    """Mail transfer: the outbound MTA, inbound SMTP, the demo's capture sink."""


@mta.command("sink")
@pass_app
def sink_run(app) -> None:
    """Run the capture sink on [sink] bind until stopped; every mail is kept as a file."""
    host, _, port = app.config["sink"]["bind"].rpartition(":")
    directory = app.config.path("sink", "dir")
    controller = start_sink(directory, host, int(port))
    click.echo(f"capture sink on {host}:{port}, writing to {directory}")
    stop_signal().wait()
    controller.stop()


@mta.command("captured")
@click.option("--limit", default=20, show_default=True)
@pass_app
def sink_list(app, limit: int) -> None:
    """List the newest mails in the capture sink (demo only: shows addresses)."""
    emit_json([
        {"to": mail["X-Sink-Rcpt-To"], "subject": mail["Subject"],
         "date": to_tokyo(mail["Date"].datetime).isoformat() if mail["Date"] else None,
         "body": mail.get_body(("plain",)).get_content().replace("\r\n", "\n")[:400]}
        for mail in read_captured(app.config.path("sink", "dir"), limit)])


@mta.command("run")
@pass_app
def mta_run(app) -> None:
    """Run the MTA until stopped: delivers due mail directly, DKIM-signed; inbound SMTP beside it ([mta] inbound_bind)."""
    inbound = controller_for(app) if app.config["mta"]["inbound_bind"] else None
    if inbound is not None:
        inbound.start()
    try:
        with service.outbound_for(app) as outbound:
            counts = service.run_until_signalled(outbound)
    finally:
        if inbound is not None:
            inbound.stop()
    emit_json(counts)


@mta.command("inbound")
@click.option("--bind", help="host:port to listen on (default: [mta] inbound_bind).")
@pass_app
def mta_inbound(app, bind: str | None) -> None:
    """Run the inbound SMTP server until stopped: bounces, guardians' replies, empty-mail registration."""
    bind = bind or app.config["mta"]["inbound_bind"]
    if not bind:
        raise click.UsageError("[mta] inbound_bind が空です。--bind host:port を指定してください")
    controller = controller_for(app, bind=bind)
    controller.start()
    click.echo(f"inbound SMTP on {bind}", err=True)
    stop_signal().wait()
    controller.stop()


@mta.command("flush")
@click.option("--wait", is_flag=True, required=True, help="Deliver everything due now and exit when done.")
@pass_app
def mta_flush(app, wait: bool) -> None:
    """Deliver everything due now and exit (like `postqueue -f`, but waiting for the results)."""
    with service.outbound_for(app) as outbound:
        emit_json(service.flush(outbound))


@mta.command("status")
@pass_app
def mta_status(app) -> None:
    """Print the queue by state and domain, the last minute's rate and resting domains, as JSON."""
    emit_json(service.status(app))


@click.group("dkim")
def dkim() -> None:
    """DKIM keys: every mail the appliance sends is signed with them."""


@dkim.command("init")
@click.option("--domain", help="The signing domain (default: [mail] domain).")
@click.option("--selector", help="The DNS selector (default: [mta] dkim_selector).")
@click.option("--ed25519/--no-ed25519", "with_ed25519", default=None,
              help="Also make an Ed25519 key (default: [mta] dkim_ed25519).")
@click.option("--force", is_flag=True, help="Replace existing keys (their DNS records must be replaced too).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON instead of zone-file lines.")
@pass_app
def dkim_init(app, domain: str | None, selector: str | None, with_ed25519: bool | None, force: bool,
              as_json: bool) -> None:
    """Make the DKIM key(s) in the data dir (mode 0600) and print the DNS TXT records to publish."""
    config_domain, config_selector = ascii_domain(app.config["mail"]["domain"]), app.config["mta"]["dkim_selector"]
    domain, selector = ascii_domain(domain or config_domain), selector or config_selector
    records = dkim_records(make_keys(app.config, domain, selector, with_ed25519=with_ed25519, force=force))
    click.echo(f"DKIM鍵を作りました（{rsa_key_path(app.config, selector).parent}、mode 0600）。"
               "次の TXT レコードを DNS に登録してください", err=True)
    # Signing follows the settings, not these options: say so now rather than when mail fails DMARC.
    for setting, current, given in (("[mail] domain", config_domain, domain),
                                    ("[mta] dkim_selector", config_selector, selector)):
        if given != current:
            click.echo(f"注意: 署名には {setting} = \"{current}\" が使われます。"
                       f"appliance.toml で \"{given}\" にしてください", err=True)
    if with_ed25519 and not app.config["mta"]["dkim_ed25519"]:
        click.echo("注意: [mta] dkim_ed25519 = false のため Ed25519 の署名はまだ付きません。"
                   "appliance.toml で true にしてください", err=True)
    if as_json:
        emit_json([record.as_dict() for record in records])
    else:
        click.echo(zone_text(records), nl=False)


@click.group("dns")
def dns() -> None:
    """DNS records the operator publishes for the appliance's mail."""


@dns.command("records")
@click.option("--ip", "ips", multiple=True, metavar="ADDRESS",
              help="A public address mail leaves from (repeatable); without it SPF uses `a`.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON instead of zone-file lines.")
@pass_app
def dns_list(app, ips: tuple[str, ...], as_json: bool) -> None:
    """Print every record to publish (MX, SPF, DKIM, DMARC) in zone-file form."""
    records = dns_records(app.config, ips)
    if as_json:
        emit_json([record.as_dict() for record in records])
    else:
        click.echo(zone_text(records), nl=False)
