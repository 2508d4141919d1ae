"""Account health (platform staff): each customer's daily health score, band and trend, worst
first, with the factors behind a score and the latest declining-account alerts.

Which tenants appear is decided in the database, per transaction (control.declare_health_scope
through pulse.health.portfolio): an account manager sees the tenants assigned to them, an
account director or platform admin every tenant, anyone else none. The page reads as the
app's reader role, so row-level security enforces that; hiding the page from other roles is
only a convenience. The tenant picked in the sidebar does not narrow this page: it is a
portfolio across tenants.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import auth
import data
import pandas as pd
import presentation as ui
import streamlit as st

from pulse.health import portfolio
from pulse.health.evaluate import HEALTH_MART
from pulse.health.rules import FACTOR_LABELS, HealthConfigError, configured_weights
from pulse.settings import get_settings

log = logging.getLogger(__name__)

HISTORY_DAYS = 90
BAND_LABELS = {"red": "Red", "amber": "Amber", "green": "Green"}


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner="Loading account health…")
def load_portfolio(email: str) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """The tenants ``email`` may see, their latest scores, and their latest health alerts."""
    with data.engine().begin() as conn, data._reading(HEALTH_MART):
        visible = portfolio.declare_scope(conn, email)
        accounts = pd.DataFrame(portfolio.portfolio(conn, email))
        alerts = pd.DataFrame(portfolio.recent_alerts(conn, visible))
    return visible, accounts, alerts


@st.cache_data(ttl=data.TTL_SECONDS, show_spinner=False)
def load_history(email: str, tenant_id: str, since: date) -> list[dict[str, object]]:
    """One tenant's days since ``since`` (empty when ``email`` may not see it)."""
    with data.engine().begin() as conn, data._reading(HEALTH_MART):
        portfolio.declare_scope(conn, email)
        return portfolio.history(conn, tenant_id, since)


@st.cache_resource(show_spinner=False)
def weights() -> dict[str, float] | None:
    try:
        return configured_weights()
    except (OSError, HealthConfigError):
        log.exception("could not read the account-health weights from dbt_project.yml")
        return None


viewer = auth.current_viewer(get_settings())
if viewer is None:  # the router shows this page only to a signed-in user
    st.stop()
email = viewer.email

title_column, refresh_column = st.columns([5, 1], vertical_alignment="bottom")
title_column.title("Account health")
if refresh_column.button("Refresh", key="account_health_refresh", icon=":material/refresh:"):
    load_portfolio.clear()
    load_history.clear()
    st.rerun()

try:
    visible, accounts, alerts = load_portfolio(email)
except data.DataNotReadyError as error:
    st.warning(str(error), icon=":material/hourglass_empty:")
    st.stop()

if not visible:
    st.info(
        "Account health is for platform staff: account managers see the customers assigned to them, "
        "account directors every customer. You have no such grant.",
        icon=":material/block:",
    )
    st.stop()

scope = "every customer" if {"platform_admin", "account_director"} & viewer.roles else "your customers"
st.caption(
    f"{len(visible)} account{'s' if len(visible) != 1 else ''} · {scope} · daily score 0-100 from six weighted "
    "factors; red 0-50, amber 51-75, green 76-100 (docs/health.md)"
)

for name in ("health_score", "score_change", "previous_day_score"):
    accounts[name] = pd.to_numeric(accounts[name], errors="coerce").astype("Int64")
scored = accounts[accounts["health_score"].notna()]
red_column, amber_column, green_column, unscored_column = st.columns(4)
for band_column, band in ((red_column, "red"), (amber_column, "amber"), (green_column, "green")):
    band_column.metric(BAND_LABELS[band], int((scored["health_band"] == band).sum()), border=True)
unscored_column.metric(
    "Not scored yet",
    len(accounts) - len(scored),
    help="No agent run, work item done or data load yet, or the health mart was not refreshed since.",
    border=True,
)

table = accounts.assign(
    band=accounts["health_band"].map(lambda band: BAND_LABELS.get(band, "—") if isinstance(band, str) else "—"),
    day_change=accounts["health_score"] - accounts["previous_day_score"],
)
st.dataframe(
    table[
        [
            "tenant_name",
            "account_managers",
            "health_score",
            "band",
            "score_change",
            "day_change",
            "score_date",
            "factors_without_data",
        ]
    ],
    hide_index=True,
    width="stretch",
    key="account_health_table",
    column_config={
        "tenant_name": st.column_config.TextColumn("Customer"),
        "account_managers": st.column_config.TextColumn("Account managers"),
        "health_score": st.column_config.ProgressColumn("Health", format="%d", min_value=0, max_value=100),
        "band": st.column_config.TextColumn("Band", width="small"),
        "score_change": st.column_config.NumberColumn(
            "Change vs previous period", format="%+d", help="Against the score one period (14 days) earlier."
        ),
        "day_change": st.column_config.NumberColumn("Change vs day before", format="%+d"),
        "score_date": st.column_config.DateColumn("Day", format="YYYY-MM-DD"),
        "factors_without_data": st.column_config.TextColumn(
            "Without data", help="Factors left out for lack of data; the others' weights are renormalized."
        ),
    },
)

st.subheader("One account")
names = dict(zip(accounts["tenant_id"], accounts["tenant_name"], strict=True))
chosen = st.selectbox(
    "Customer",
    list(names),
    format_func=lambda tenant: names.get(tenant, tenant),
    key="account_health_tenant",
)
today = datetime.now(UTC).date()
days = load_history(email, chosen, today - timedelta(days=HISTORY_DAYS)) if chosen else []
if not days:
    st.info(
        f"{ui.escape_markdown(names.get(chosen, chosen or ''))} has no health score yet: it needs an agent run, "
        "a work item done or a data load, and a refresh of the health mart.",
        icon=":material/hourglass_empty:",
    )
else:
    history = pd.DataFrame(days)
    st.line_chart(
        history.rename(columns={"score_date": "Day", "health_score": "Health"}),
        x="Day",
        y="Health",
        y_label="Health score",
    )
    latest = days[-1]
    measured = latest["measured_at"]
    st.caption(
        f"{latest['score_date']:%Y-%m-%d}: {latest['health_score']} ({BAND_LABELS[str(latest['health_band'])]}), "
        f"measured {ui.format_timestamp(measured if isinstance(measured, datetime) else None)}"
    )
    st.dataframe(
        pd.DataFrame(portfolio.factor_details(latest, weights())),
        hide_index=True,
        width="stretch",
        key="account_health_factors",
        column_config={
            "factor": st.column_config.TextColumn("Factor"),
            "score": st.column_config.ProgressColumn("Score", format="%.1f", min_value=0, max_value=100),
            "share_pct": st.column_config.NumberColumn(
                "Share of the score", format="%.1f %%", help="Its weight, renormalized over the factors with data."
            ),
            "figures": st.column_config.TextColumn("Figures", width="large"),
        },
    )

st.subheader("Latest alerts")
if alerts.empty:
    st.caption("No health alert yet.")
else:
    st.dataframe(
        alerts.assign(
            customer=alerts["tenant_id"].map(lambda tenant: names.get(tenant, tenant)),
            reason=alerts["reason"].map(
                {
                    "drop": "Fell by the alert drop",
                    "band": "Fell a band",
                    "drop_and_band": "Fell by the drop and a band",
                }
            ),
        )[["fired_at", "customer", "score_date", "previous_score", "health_score", "health_band", "reason"]],
        hide_index=True,
        width="stretch",
        key="account_health_alerts",
        column_config={
            "fired_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "customer": st.column_config.TextColumn("Customer"),
            "score_date": st.column_config.DateColumn("Day", format="YYYY-MM-DD"),
            "previous_score": st.column_config.NumberColumn("Day before", format="%d"),
            "health_score": st.column_config.NumberColumn("Score", format="%d"),
            "health_band": st.column_config.TextColumn("Band"),
            "reason": st.column_config.TextColumn("Why"),
        },
    )
    st.caption(
        "Each alert reached the customer's account managers in the app (Notifications) and by email. "
        f"Factors: {', '.join(FACTOR_LABELS.values())}."
    )
