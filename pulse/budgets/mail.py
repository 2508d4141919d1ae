"""Email for budget alerts: SMTP settings from the environment and the outbox delivery.

Alerts put their emails in ``control.email_outbox`` (pulse.budgets.evaluate); this module
sends the due ones over SMTP (:mod:`smtplib`). Delivery is apart from the alert on purpose:
the in-app notification is already committed, so a mail server that is down only delays the
email. A failed attempt is recorded on its row (attempts, last error, next attempt) and
retried with exponential backoff — 1, 2, 4 … minutes, at most an hour apart — until
:data:`MAX_ATTEMPTS`, after which the row is ``failed`` and waits for a person
(``pulse budget notifications retry``). ``pulse budget notifications list`` and the app's
Budgets page show every state.

Each email is sent in its own transaction that holds the row lock (``for update skip
locked``), so two deliverers never send the same email; if a process dies after the server
accepted a message but before the commit, that message is sent again (at least once).

Environment (README, "Configuration"):

``PULSE_SMTP_HOST``      server; unset means email is off (alerts stay in-app, emails wait)
``PULSE_SMTP_PORT``      port (default 587 with STARTTLS, else 25)
``PULSE_SMTP_USER``      login user (no login when unset)
``PULSE_SMTP_PASSWORD``  login password
``PULSE_SMTP_FROM``      sender address (default ``pulse@localhost``)
``PULSE_SMTP_STARTTLS``  ``true`` to upgrade the connection with STARTTLS (default false)
"""

from __future__ import annotations

import logging
import os
import smtplib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import sqlalchemy as sa
from sqlalchemy import text

from pulse.budgets.store import BudgetError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class SmtpConfigError(BudgetError):
    """PULSE_SMTP_* holds a value that cannot work; the message names the variable."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int = 25
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "pulse@localhost"
    starttls: bool = False
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        env = os.environ if environ is None else environ
        flag = env.get("PULSE_SMTP_STARTTLS", "").strip().lower()
        if flag not in _TRUE | _FALSE:
            raise SmtpConfigError(f"PULSE_SMTP_STARTTLS={flag!r}: write true or false.")
        starttls = flag in _TRUE
        port_text = env.get("PULSE_SMTP_PORT", "").strip()
        try:
            port = int(port_text) if port_text else (587 if starttls else 25)
        except ValueError:
            raise SmtpConfigError(f"PULSE_SMTP_PORT={port_text!r} is not a port number (e.g. 25 or 587).") from None
        if not 0 < port < 65536:
            raise SmtpConfigError(f"PULSE_SMTP_PORT={port} is out of range (1-65535).")
        return cls(
            host=env.get("PULSE_SMTP_HOST", "").strip() or None,
            port=port,
            user=env.get("PULSE_SMTP_USER") or None,
            password=env.get("PULSE_SMTP_PASSWORD") or None,
            sender=env.get("PULSE_SMTP_FROM", "").strip() or "pulse@localhost",
            starttls=starttls,
        )

    @property
    def configured(self) -> bool:
        return self.host is not None


def queue_email(
    conn: sa.Connection, *, tenant_id: str, notification_id: int, email: str, subject: str, body: str, now: datetime
) -> None:
    """Put a notification's email in control.email_outbox, due at ``now`` (delivered and retried
    by :func:`deliver_due_emails`, apart from the transaction that wrote the notification)."""
    conn.execute(
        text(
            "insert into control.email_outbox (tenant_id, notification_id, recipient_email, subject, body, "
            "next_attempt_at) values (:t, :n, :email, :subject, :body, :now)"
        ),
        {"t": tenant_id, "n": notification_id, "email": email, "subject": subject, "body": body, "now": now},
    )


def build_message(settings: SmtpSettings, recipient: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or "localhost")
    message.set_content(body)
    return message


def send_email(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send one message; raises :class:`smtplib.SMTPException` or :class:`OSError` on failure."""
    if settings.host is None:
        raise SmtpConfigError("Email is off: set PULSE_SMTP_HOST (and PULSE_SMTP_PORT …) to send alerts.")
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as server:
        if settings.starttls:
            server.starttls()
        if settings.user:
            server.login(settings.user, settings.password or "")
        server.send_message(message)


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 1, 2, 4, … minutes, at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


def describe_error(error: BaseException) -> str:
    """One line a person can act on, without credentials."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"login refused ({error.smtp_code}): check PULSE_SMTP_USER and PULSE_SMTP_PASSWORD"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return f"recipient refused by the server: {', '.join(error.recipients)}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: is the SMTP server at PULSE_SMTP_HOST:PULSE_SMTP_PORT running?"
    if isinstance(error, TimeoutError):
        return "the SMTP server did not answer in time (PULSE_SMTP_HOST / PULSE_SMTP_PORT)"
    return f"{type(error).__name__}: {error}".strip()


@dataclass
class DeliveryReport:
    """One delivery pass: ids sent, retried later, given up; why nothing was tried, if so."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    gave_up: list[int] = field(default_factory=list)
    skipped: str | None = None


_CLAIM = text(
    "select email_id, recipient_email, subject, body, attempts from control.email_outbox "
    "where status = 'pending' and next_attempt_at <= :now and email_id <> all(cast(:tried as bigint[])) "
    "order by next_attempt_at, email_id limit 1 for update skip locked"
)


def deliver_due_emails(
    engine: sa.Engine,
    settings: SmtpSettings,
    *,
    now: datetime | None = None,
    limit: int = 50,
    time_budget_seconds: float | None = None,
) -> DeliveryReport:
    """Send up to ``limit`` due emails of the outbox, each in its own transaction.

    ``now`` (default: the database clock) decides which are due and when a failed one is
    tried next. Without PULSE_SMTP_HOST nothing is attempted and the emails keep waiting.
    ``time_budget_seconds`` stops starting new sends after that long (a sensor tick must end
    in time); the rest wait for the next pass.
    """
    report = DeliveryReport()
    if not settings.configured:
        report.skipped = "PULSE_SMTP_HOST is not set: email is off, alerts are in-app only"
        return report
    started = time.monotonic()
    tried: list[int] = []
    while len(tried) < limit:
        if time_budget_seconds is not None and time.monotonic() - started > time_budget_seconds:
            break
        with engine.begin() as conn:
            moment = now if now is not None else conn.execute(text("select clock_timestamp()")).scalar_one()
            row = conn.execute(_CLAIM, {"now": moment, "tried": tried}).one_or_none()
            if row is None:
                break
            tried.append(int(row.email_id))
            message = build_message(settings, row.recipient_email, row.subject, row.body)
            try:
                send_email(settings, message)
            except (smtplib.SMTPException, OSError) as error:
                attempts = int(row.attempts) + 1
                gave_up = attempts >= MAX_ATTEMPTS
                reason = describe_error(error)
                conn.execute(
                    text(
                        "update control.email_outbox set attempts = :attempts, last_error = :error, "
                        "status = :status, next_attempt_at = :next where email_id = :id"
                    ),
                    {
                        "attempts": attempts,
                        "error": reason,
                        "status": "failed" if gave_up else "pending",
                        "next": moment + backoff(attempts),
                        "id": row.email_id,
                    },
                )
                (report.gave_up if gave_up else report.retrying).append(int(row.email_id))
                log.warning(
                    "email %s to %s failed (attempt %s of %s): %s",
                    row.email_id,
                    row.recipient_email,
                    attempts,
                    MAX_ATTEMPTS,
                    reason,
                )
                continue
            conn.execute(
                text(
                    "update control.email_outbox set status = 'sent', attempts = attempts + 1, last_error = null, "
                    "sent_at = clock_timestamp() where email_id = :id"
                ),
                {"id": row.email_id},
            )
            report.sent.append(int(row.email_id))
    return report


def retry_email(conn: sa.Connection, email_id: int) -> None:
    """Queue an email again now (a failed one gets a fresh round of attempts)."""
    status = conn.execute(
        text("select status from control.email_outbox where email_id = :id"), {"id": email_id}
    ).scalar_one_or_none()
    if status is None:
        raise BudgetError(f"No email {email_id}; `pulse budget notifications list` shows them.")
    if status == "sent":
        raise BudgetError(f"Email {email_id} was sent already; nothing to retry.")
    conn.execute(
        text(
            "update control.email_outbox set status = 'pending', next_attempt_at = now(), "
            "attempts = case when status = 'failed' then 0 else attempts end where email_id = :id"
        ),
        {"id": email_id},
    )
