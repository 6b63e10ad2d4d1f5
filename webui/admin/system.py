"""System status for the operator: health, queue, disk, and the DNS records to publish."""
from __future__ import annotations

import shutil

from flask import current_app, g, render_template, request

from appliance import deliveries, dns_records, health
from appliance.errors import ApplianceError
from webui.access import OPERATOR, access
from webui.admin import bp


@bp.get("/system")
@access(OPERATOR)
def system_show():
    """Database, queue and MTA health, deliveries by state, disk use, and the DNS records (``?ip=`` for SPF)."""
    ips = [ip for ip in request.args.get("ip", "").replace(",", " ").split() if ip][:8]
    try:
        records, dns_error = dns_records.dns_records(g.appliance.config, ips), None
    except ApplianceError as error:     # no DKIM key yet, or a bad --ip: the page says what to do
        records, dns_error = [], str(error)
    return render_template("admin/system_show.html",
                           status=health.check_health(g.appliance, current_app.extensions["queue"]),
                           queue=deliveries.queue_status(g.appliance),
                           disk=shutil.disk_usage(g.appliance.data_dir),
                           records=records, dns_error=dns_error, ips=" ".join(ips))
