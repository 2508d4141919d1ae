"""Budgets (org admins): each monthly agent-cost budget of the tenant with this month's spend,
share used and projection, the latest alerts, emails not delivered yet, and forms to set a
budget or add a threshold. The database decides who may change budgets
(control.may_manage_budgets); hiding the page from other roles is only a convenience."""

from __future__ import annotations

from decimal import Decimal

import alerts_data
import auth
import data
import presentation as ui
import streamlit as st

from pulse.settings import get_settings

#: A change's confirmation, shown once after the page reruns with the new figures.
FLASH_KEY = "budgets_flash"

viewer = auth.current_viewer(get_settings())
if viewer is None:  # the router shows this page only to a signed-in user
    st.stop()
email = viewer.email
tenant_id = viewer.tenant_id or ""

title_column, refresh_column = st.columns([5, 1], vertical_alignment="bottom")
title_column.title("Budgets")
if refresh_column.button("Refresh", key="budgets_refresh", icon=":material/refresh:"):
    alerts_data.clear()
    st.rerun()

try:
    allowed = alerts_data.may_manage_budgets(email, tenant_id)
    if not allowed:
        st.error(
            f"Budgets are managed by the org admins of {viewer.tenant_name(tenant_id)}; "
            "ask one of them, or a platform admin, for a change.",
            icon=":material/block:",
        )
        st.stop()
    table = alerts_data.budgets(email, tenant_id)
except data.TenantAccessError as error:
    st.error(str(error), icon=":material/block:")
    st.stop()
except data.DataNotReadyError as error:
    st.warning(str(error), icon=":material/hourglass_empty:")
    st.stop()

flash = st.session_state.pop(FLASH_KEY, None)
if flash:
    st.success(flash, icon=":material/check:")

tenant_name = ui.escape_markdown(viewer.tenant_name(tenant_id))
st.caption(
    f"{tenant_name} · monthly agent-cost budgets, calendar months in the tenant's time zone. "
    "Alerts go to org admins (and a team's leads for a team budget), in the app and by email."
)

if table.empty:
    st.info("No budget yet. Set the organisation's monthly budget below.", icon=":material/savings:")
else:
    measured = table["measured_at"].dropna()
    if len(measured):
        st.caption(f"This month's figures as of {ui.format_timestamp(measured.max())}")
    st.dataframe(
        table[
            [
                "budget",
                "amount_usd",
                "thresholds",
                "spent_usd",
                "share_used_pct",
                "projected_usd",
                "projected_share_pct",
            ]
        ],
        hide_index=True,
        width="stretch",
        key="budgets_table",
        column_config={
            "budget": st.column_config.TextColumn("Budget"),
            "amount_usd": st.column_config.NumberColumn("USD a month", format="%.2f"),
            "thresholds": st.column_config.TextColumn("Alerts at"),
            "spent_usd": st.column_config.NumberColumn("Spent this month (USD)", format="%.2f"),
            "share_used_pct": st.column_config.ProgressColumn("Used", format="%.1f %%", min_value=0, max_value=100),
            "projected_usd": st.column_config.NumberColumn("Projected month end (USD)", format="%.2f"),
            "projected_share_pct": st.column_config.NumberColumn("Projected use", format="%.1f %%"),
        },
    )

st.subheader("Latest alerts")
alerts = alerts_data.recent_alerts(email, tenant_id)
if alerts.empty:
    st.caption("No alert yet.")
else:
    st.dataframe(
        alerts,
        hide_index=True,
        width="stretch",
        key="budget_alerts_table",
        column_config={
            "fired_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "budget": st.column_config.TextColumn("Budget"),
            "alert": st.column_config.TextColumn("Alert"),
            "month": st.column_config.DateColumn("Month", format="YYYY-MM"),
            "spent_usd": st.column_config.NumberColumn("Spent (USD)", format="%.2f"),
            "amount_usd": st.column_config.NumberColumn("Budget then (USD)", format="%.2f"),
            "rearmed": st.column_config.CheckboxColumn(
                "Re-armed", help="The budget was raised past it: it will alert again at the new level."
            ),
        },
    )

undelivered = alerts_data.undelivered_emails(email, tenant_id)
if not undelivered.empty:
    st.subheader("Emails not delivered yet")
    st.caption("The in-app notifications exist already; these emails are retried with backoff.")
    st.dataframe(
        undelivered,
        hide_index=True,
        width="stretch",
        key="budget_emails_table",
        column_config={
            "recipient_email": st.column_config.TextColumn("To"),
            "subject": st.column_config.TextColumn("Subject"),
            "status": st.column_config.TextColumn("State"),
            "attempts": st.column_config.NumberColumn("Attempts", format="%d"),
            "last_error": st.column_config.TextColumn("Last error"),
            "next_attempt_at": st.column_config.DatetimeColumn("Next attempt (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )

st.subheader("Change budgets")
set_column, threshold_column = st.columns(2)
teams = alerts_data.teams(email, tenant_id)
scopes: dict[str, int | None] = {"Organisation": None} | {f"Team {name}": team_id for team_id, name in teams}
with set_column.form("set_budget", border=True):
    st.markdown("**Set a monthly budget**")
    scope = st.selectbox("Budget", list(scopes), key="set_budget_scope")
    amount = st.number_input("USD a month", min_value=1.0, value=1000.0, step=100.0, key="set_budget_amount")
    if st.form_submit_button("Save budget"):
        try:
            alerts_data.set_budget(email, tenant_id, scopes[scope], Decimal(str(amount)).quantize(Decimal("0.01")))
        except alerts_data.BudgetChangeError as error:
            st.error(str(error))
        else:
            st.session_state[FLASH_KEY] = f"{scope} budget set to USD {amount:,.2f} a month."
            st.rerun()

with threshold_column.form("add_threshold", border=True):
    st.markdown("**Add an alert threshold**")
    if table.empty:
        st.caption("Set a budget first.")
        st.form_submit_button("Add threshold", disabled=True)
    else:
        labels = dict(zip(table["budget"], table["budget_id"], strict=True))
        chosen = st.selectbox("Budget", list(labels), key="add_threshold_budget")
        pct = st.number_input(
            "Percent of the budget", min_value=1, max_value=1000, value=90, step=5, key="add_threshold_pct"
        )
        if st.form_submit_button("Add threshold"):
            try:
                alerts_data.add_threshold(email, tenant_id, int(labels[chosen]), int(pct))
            except alerts_data.BudgetChangeError as error:
                st.error(str(error))
            else:
                st.session_state[FLASH_KEY] = f"{chosen}: alerts at {int(pct)} % too."
                st.rerun()
