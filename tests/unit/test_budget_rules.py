"""Budget rules without a database: thresholds, months in a tenant's time zone, the early
warning, email backoff and the SMTP settings read from the environment."""

from __future__ import annotations

import smtplib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from pulse.budgets.evaluate import crossed_thresholds, forecast_exceeds, period_start
from pulse.budgets.mail import MAX_ATTEMPTS, SmtpConfigError, SmtpSettings, backoff, build_message, describe_error
from pulse.budgets.store import BudgetError, check_threshold, parse_amount

D = Decimal
DEFAULT = (50, 80, 100)


@pytest.mark.parametrize(
    ("spend", "crossed"),
    [
        ("0", []),
        ("199.99", []),
        ("200.00", [50]),  # exactly 50 % of 400
        ("319.999999", [50]),
        ("320.00", [50, 80]),  # exactly 80 %
        ("399.99", [50, 80]),
        ("400.00", [50, 80, 100]),  # exactly 100 %
        ("1000", [50, 80, 100]),
    ],
)
def test_a_threshold_is_crossed_at_exactly_its_share(spend: str, crossed: list[int]) -> None:
    assert crossed_thresholds(D(spend), D("400.00"), DEFAULT) == crossed


def test_several_and_custom_thresholds_are_returned_ascending_once() -> None:
    # 9.42 budget, 4.71 spent (one hand-priced run): exactly 50 %.
    assert crossed_thresholds(D("4.71"), D("9.42"), DEFAULT) == [50]
    assert crossed_thresholds(D("500"), D("400"), (120, 100, 50, 80, 90, 100, 130)) == [50, 80, 90, 100, 120]


def test_months_follow_the_tenant_time_zone() -> None:
    # New York is UTC-4 until 06:00 UTC on 1 November 2026 (end of daylight saving time).
    assert period_start(datetime(2026, 11, 1, 3, 59, 59, tzinfo=UTC), "America/New_York") == date(2026, 10, 1)
    assert period_start(datetime(2026, 11, 1, 4, 0, tzinfo=UTC), "America/New_York") == date(2026, 11, 1)
    # Auckland is UTC+13 in summer: 11:00 UTC on 31 October is already 1 November there.
    assert period_start(datetime(2026, 10, 31, 10, 59, tzinfo=UTC), "Pacific/Auckland") == date(2026, 10, 1)
    assert period_start(datetime(2026, 10, 31, 11, 0, tzinfo=UTC), "Pacific/Auckland") == date(2026, 11, 1)
    assert period_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "UTC") == date(2026, 12, 1)


def test_the_early_warning_needs_a_projection_over_the_budget_while_spend_is_under() -> None:
    assert forecast_exceeds(D("170"), D("400.01"), D("400"))
    assert not forecast_exceeds(D("170"), D("400"), D("400"))  # exactly on budget: no warning
    assert not forecast_exceeds(D("400"), D("800"), D("400"))  # already over: the 100 % alert says it
    assert not forecast_exceeds(D("170"), None, D("400"))


def test_failed_emails_back_off_exponentially_up_to_an_hour() -> None:
    waits = [backoff(attempt) for attempt in range(1, MAX_ATTEMPTS + 1)]
    assert waits[:7] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60)]
    assert waits[7] == timedelta(hours=1)


def test_smtp_settings_come_from_the_environment() -> None:
    assert SmtpSettings.from_env({}) == SmtpSettings(host=None)
    assert not SmtpSettings.from_env({}).configured
    settings = SmtpSettings.from_env(
        {
            "PULSE_SMTP_HOST": "mail.example",
            "PULSE_SMTP_USER": "pulse",
            "PULSE_SMTP_PASSWORD": "s3cret",
            "PULSE_SMTP_FROM": "alerts@acme.example",
            "PULSE_SMTP_STARTTLS": "true",
        }
    )
    assert (settings.host, settings.port, settings.user, settings.sender, settings.starttls) == (
        "mail.example",
        587,
        "pulse",
        "alerts@acme.example",
        True,
    )
    assert "s3cret" not in repr(settings)
    assert SmtpSettings.from_env({"PULSE_SMTP_HOST": "h", "PULSE_SMTP_PORT": "2525"}).port == 2525


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PULSE_SMTP_PORT": "smtp"}, "PULSE_SMTP_PORT='smtp' is not a port number"),
        ({"PULSE_SMTP_PORT": "70000"}, "PULSE_SMTP_PORT=70000 is out of range"),
        ({"PULSE_SMTP_STARTTLS": "maybe"}, "PULSE_SMTP_STARTTLS='maybe': write true or false"),
    ],
)
def test_bad_smtp_settings_say_which_variable_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(SmtpConfigError, match=message):
        SmtpSettings.from_env(env)


def test_errors_are_described_for_a_person() -> None:
    assert "is the SMTP server at PULSE_SMTP_HOST:PULSE_SMTP_PORT running?" in describe_error(
        ConnectionRefusedError(111, "Connection refused")
    )
    assert "check PULSE_SMTP_USER and PULSE_SMTP_PASSWORD" in describe_error(
        smtplib.SMTPAuthenticationError(535, b"bad credentials")
    )


def test_a_message_has_sender_recipient_subject_and_body() -> None:
    message = build_message(SmtpSettings(host="h", sender="alerts@acme.example"), "ada@acme.example", "S", "B")
    assert (message["From"], message["To"], message["Subject"]) == ("alerts@acme.example", "ada@acme.example", "S")
    assert message.get_content().strip() == "B"
    assert message["Message-ID"].endswith("@acme.example>")


def test_amounts_and_thresholds_are_checked_with_a_clear_message() -> None:
    assert parse_amount("1,500") == D("1500.00")
    assert parse_amount("$9.42") == D("9.42")
    with pytest.raises(BudgetError, match="positive amount"):
        parse_amount("0")
    with pytest.raises(BudgetError, match="whole cents"):
        parse_amount("1.001")
    with pytest.raises(BudgetError, match="not an amount"):
        parse_amount("lots")
    assert check_threshold(120) == 120
    with pytest.raises(BudgetError, match="from 1 to 1000"):
        check_threshold(0)
