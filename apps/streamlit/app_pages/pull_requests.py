"""Pull requests: review speed and merges without review, for the selected tenant and window."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import auth
import data
import presentation as ui
import streamlit as st

from pulse.settings import get_settings

log = logging.getLogger(__name__)

WINDOW_KEY = "pull_requests_window"

viewer = auth.current_viewer(get_settings())
if viewer is None:  # the router shows this page only to a signed-in user
    st.stop()
email = viewer.email
tenant_id = viewer.tenant_id or ""

title_column, refresh_column = st.columns([5, 1], vertical_alignment="bottom")
title_column.title("Pull requests")
if refresh_column.button("Refresh", key="pull_requests_refresh", icon=":material/refresh:"):
    data.clear_cached_queries()
    st.rerun()

today = datetime.now(UTC).date()
window = st.date_input(
    "Opened between (UTC)",
    value=ui.default_window(today),
    min_value=today - timedelta(days=ui.HISTORY_DAYS),
    max_value=today,
    key=WINDOW_KEY,
    format="YYYY-MM-DD",
)
if not isinstance(window, tuple) or len(window) != 2 or None in window:
    st.info("Pick the last day of the window too.")
    st.stop()
start, end = window
assert isinstance(start, date) and isinstance(end, date)

try:
    synced_at = data.last_updated(email, tenant_id)
    summary = data.pull_request_summary(email, tenant_id, start, end)
except data.TenantAccessError as error:
    st.error(str(error), icon=":material/block:")
    st.stop()
except data.DataNotReadyError as error:
    st.warning(str(error), icon=":material/hourglass_empty:")
    st.stop()

tenant_name = ui.escape_markdown(viewer.tenant_name(tenant_id))
st.caption(f"{tenant_name} · Last updated: {ui.format_timestamp(synced_at)}")

if summary.opened == 0:
    st.info(
        f"No pull requests were opened in {tenant_name} between {start:%Y-%m-%d} and "
        f"{end:%Y-%m-%d}. Widen the window, or check the sources' last sync.",
        icon=":material/inbox:",
    )
    st.stop()

opened_column, merged_column, review_column, unreviewed_column = st.columns(4)
opened_column.metric("PRs opened", ui.format_count(summary.opened), border=True)
merged_column.metric("PRs merged", ui.format_count(summary.merged), border=True)
review_column.metric(
    "Median hours to first review",
    ui.format_hours(summary.median_hours_to_first_review),
    help=f"Median over the {summary.reviewed} pull requests of the window that have a review.",
    border=True,
)
unreviewed_column.metric(
    "Merged without review",
    ui.format_percent(summary.merged_without_review_pct),
    help=(f"{summary.merged_without_review} of {summary.merged} merged pull requests had no review before merging."),
    border=True,
)

st.subheader("Per week")
weekly = data.weekly_pull_requests(email, tenant_id, start, end)
st.bar_chart(
    # One labelled bar group per week (a date axis would draw hairline bars).
    weekly.assign(week=weekly["week"].map(lambda week: f"{week:%Y-%m-%d}")).rename(
        columns={"week": "Week", "opened": "Opened", "merged": "Merged"}
    ),
    x="Week",
    y=["Opened", "Merged"],
    x_label="Week starting (Monday, UTC)",
    y_label="Pull requests",
    color=["#1f77b4", "#2ca02c"],
    stack=False,
)
st.caption(
    "Opened: by the week a pull request was opened. Merged: the window's pull requests, by the week they were merged."
)

st.subheader("Pull requests")
table = data.pull_requests(email, tenant_id, start, end)
if len(table) < summary.opened:
    st.caption(f"The {len(table):,} most recently opened of {summary.opened:,} pull requests.")
st.dataframe(
    table[
        [
            "repository",
            "pull_request_number",
            "title",
            "author_login",
            "state",
            "opened_at",
            "hours_to_first_review",
            "review_count",
            "is_merged_without_review",
        ]
    ],
    hide_index=True,
    width="stretch",
    column_config={
        "repository": st.column_config.TextColumn("Repository"),
        "pull_request_number": st.column_config.NumberColumn("Number", format="#%d", width="small"),
        "title": st.column_config.TextColumn("Title", width="medium"),
        "author_login": st.column_config.TextColumn("Author", width="small"),
        "state": st.column_config.TextColumn("State", width="small"),
        "opened_at": st.column_config.DatetimeColumn("Opened (UTC)", format="YYYY-MM-DD HH:mm"),
        "hours_to_first_review": st.column_config.NumberColumn("Hours to first review", format="%.1f"),
        "review_count": st.column_config.NumberColumn("Reviews", format="%d", width="small"),
        "is_merged_without_review": st.column_config.CheckboxColumn("Merged without review"),
    },
)
