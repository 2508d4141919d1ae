"""``pulse flag …``: Done-Means-Tested compliance flags from the terminal.

Registered on the ``pulse`` group by ``pulse.cli._register_service_commands``. A resolution
is stored in the control plane (control.compliance_flag_resolutions, audited with the actor
``PULSE_ACTOR`` or ``cli:<login>``); marts.fct_compliance_flags shows it from its next build.
"""

from __future__ import annotations

import click
from sqlalchemy import text

from pulse import control


@click.group()
def flag() -> None:
    """Done-Means-Tested compliance flags (marts.fct_compliance_flags)."""


@flag.command("list")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--all", "show_all", is_flag=True, help="Resolved flags too.")
def flag_list(tenant_id: str, show_all: bool) -> None:
    """The tenant's flags, critical first, as of the last build of the marts."""
    from pulse.cli import transaction
    from pulse.settings import get_settings

    with transaction(get_settings()) as conn:
        control.require_tenant(conn, tenant_id)
        rows = conn.execute(
            text(
                "select work_item_uid, flag_type, severity, opened_at, resolution, resolved_by, message "
                "from marts.fct_compliance_flags where tenant_id = :t and (is_open or :all) "
                "order by case severity when 'critical' then 0 when 'warning' then 1 else 2 end, opened_at"
            ),
            {"t": tenant_id, "all": show_all},
        ).all()
    for uid, flag_type, severity, opened_at, resolution, resolved_by, message in rows:
        state = f"resolved ({resolution} by {resolved_by})" if resolution else "open"
        click.echo(f"{severity:8} {uid:28} {flag_type:26} since {opened_at:%Y-%m-%d} {state}: {message}")
    click.echo(f"{len(rows)} flag(s)")


@flag.command("resolve")
@click.option("--tenant", "tenant_id", required=True)
@click.argument("work_item_uid")
@click.argument("flag_type", type=click.Choice(control.COMPLIANCE_FLAG_TYPES))
@click.option("--note", required=True, help="Why the flag is dealt with.")
def flag_resolve(tenant_id: str, work_item_uid: str, flag_type: str, note: str) -> None:
    """Resolve FLAG_TYPE of WORK_ITEM_UID (e.g. jira:10042) by hand; it stays resolved across rebuilds."""
    from pulse.cli import actor, transaction
    from pulse.settings import get_settings

    with transaction(get_settings()) as conn:
        resolution_id = control.resolve_compliance_flag(
            conn, tenant_id, work_item_uid, flag_type, note=note, actor=actor()
        )
    click.echo(f"resolved {flag_type} of {work_item_uid} (resolution {resolution_id}); the next build shows it")
