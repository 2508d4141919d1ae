"""Notifications: the signed-in user's in-app alerts (budget thresholds, early warnings) in the
selected tenant, newest first, with the state of the email each one also sent."""

from __future__ import annotations

from typing import Any

import alerts_data
import auth
import data
import pandas as pd
import presentation as ui
import streamlit as st

from pulse.settings import get_settings

viewer = auth.current_viewer(get_settings())
if viewer is None:  # the router shows this page only to a signed-in user
    st.stop()
email = viewer.email
tenant_id = viewer.tenant_id or ""

title_column, refresh_column = st.columns([5, 1], vertical_alignment="bottom")
title_column.title("Notifications")
if refresh_column.button("Refresh", key="notifications_refresh", icon=":material/refresh:"):
    alerts_data.clear()
    st.rerun()

try:
    items = alerts_data.notifications(email, tenant_id)
except data.TenantAccessError as error:
    st.error(str(error), icon=":material/block:")
    st.stop()

tenant_name = ui.escape_markdown(viewer.tenant_name(tenant_id))
if items.empty:
    st.info(
        f"No notifications for you in {tenant_name}. Budget alerts reach org admins (and a team's "
        "leads for a team budget) when spend crosses a threshold.",
        icon=":material/notifications_off:",
    )
    st.stop()

unread = items[items["read_at"].isna()]
st.caption(f"{tenant_name} · {len(unread)} unread of {len(items)}")
if len(unread) and st.button("Mark all as read", key="notifications_mark_read", icon=":material/done_all:"):
    alerts_data.mark_read(email, tenant_id, [int(i) for i in unread["notification_id"]])
    st.rerun()


def email_state(row: Any) -> str:
    """One line on the email that went with the notification."""
    status = row["email_status"]
    if pd.isna(status):
        return "No email"
    if status == "sent":
        return f"Email sent {ui.format_timestamp(row['email_sent_at'])}"
    if status == "failed":
        return f"Email failed after {int(row['email_attempts'])} attempts: {row['email_error']}"
    if row["email_attempts"]:
        return (
            f"Email not delivered yet ({int(row['email_attempts'])} failed attempts, last error: "
            f"{row['email_error']}); next attempt {ui.format_timestamp(row['email_next_attempt_at'])}"
        )
    return "Email queued"


for _, row in items.iterrows():
    is_new = pd.isna(row["read_at"])
    with st.container(border=True):
        st.markdown(f"{'**New** · ' if is_new else ''}**{ui.escape_markdown(str(row['title']))}**")
        st.text(str(row["body"]))
        st.caption(f"{ui.format_timestamp(row['created_at'])} · {ui.escape_markdown(email_state(row))}")
