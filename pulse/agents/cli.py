"""``pulse agents …``: the lead registers :data:`agents` on the ``pulse`` command group."""

from __future__ import annotations

from pathlib import Path

import click

from pulse.agents.importer import FORMATS, ImportFileError, import_runs
from pulse.control import ControlError


@click.group()
def agents() -> None:
    """AI-agent runs: import a tenant's history from files."""


@agents.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--tenant", "tenant_id", required=True, help="Tenant slug (must exist).")
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default=None, help="File format (default: from the file name)."
)
def import_command(file: Path, tenant_id: str, dry_run: bool, fmt: str | None) -> None:
    """Import historical agent runs from FILE (JSONL or CSV) into raw_agent_import__<tenant>.runs.

    Lines that fail validation are rejected with their line number and reason; every good
    line is kept. Importing the same file again changes nothing.
    """
    from pulse.settings import get_settings

    try:
        report = import_runs(get_settings(), tenant_id, file, dry_run=dry_run, fmt=fmt)
    except (ControlError, ImportFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(report.render())
