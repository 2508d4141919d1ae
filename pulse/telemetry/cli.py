"""``pulse ingest``: run the OTLP receiver for Claude Code, and issue its tokens.

Registered in :mod:`pulse.cli` with ``main.add_command(ingest)``.
"""

from __future__ import annotations

import getpass
import logging
import os

import click

from pulse import control

log = logging.getLogger(__name__)


def _actor() -> str:
    return os.environ.get("PULSE_ACTOR") or f"cli:{getpass.getuser()}"


@click.group("ingest")
def ingest() -> None:
    """Receive Claude Code telemetry over OTLP/HTTP."""


@ingest.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=4318, show_default=True, type=int, help="Port (4318 is OTLP/HTTP's default).")
@click.option("--max-body-mib", default=4.0, show_default=True, type=float, help="Largest body, after gunzip.")
@click.option("--max-in-flight", default=32, show_default=True, type=int, help="Requests at once before 429.")
@click.option("--pool-size", default=8, show_default=True, type=int, help="Database connections.")
def serve(host: str, port: int, max_body_mib: float, max_in_flight: int, pool_size: int) -> None:
    """Serve POST /v1/logs and /v1/metrics (protobuf or JSON) until Ctrl-C."""
    from pulse.db import database_url
    from pulse.settings import get_settings
    from pulse.telemetry.server import ReceiverConfig, ReceiverServer, build_receiver

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ReceiverConfig(
        max_body_bytes=int(max_body_mib * 1024 * 1024), max_in_flight=max_in_flight, pool_size=pool_size
    )
    receiver = build_receiver(database_url(get_settings()), config)
    server = ReceiverServer((host, port), receiver)
    click.echo(f"OTLP/HTTP receiver on http://{host}:{port} (POST /v1/logs, /v1/metrics; GET /health)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        server.server_close()
        receiver.store.pool.close()


@ingest.group("token")
def token() -> None:
    """Ingest tokens (one per tenant and sender)."""


@token.command("create")
@click.option("--tenant", "tenant_id", required=True, help="Tenant slug the token writes into.")
@click.option("--name", required=True, help="What the token is for, e.g. 'claude-code laptops'.")
def create(tenant_id: str, name: str) -> None:
    """Create an ingest token and print it (once: only its hash is stored)."""
    from pulse.db import admin_engine
    from pulse.settings import get_settings
    from pulse.tokens import create_token

    try:
        with admin_engine(get_settings()).begin() as conn:
            value = create_token(conn, tenant_id, "ingest", name=name, actor=_actor())
    except control.ControlError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(value)
    click.echo("Store it now: it cannot be shown again. Use it as OTEL_EXPORTER_OTLP_HEADERS=", err=True, nl=False)
    click.echo('"Authorization=Bearer <token>".', err=True)
