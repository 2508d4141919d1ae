"""Sign-in: development sign-in with the demo users (PULSE_AUTH=dev), or a clear refusal."""

from __future__ import annotations

import logging

import auth
import data
import presentation as ui
import streamlit as st

from pulse.settings import get_settings

log = logging.getLogger(__name__)
settings = get_settings()

st.title("Pulse")
st.caption("Engineering analytics: delivery, pull-request health and AI-agent cost.")

if not auth.dev_sign_in_enabled(settings):
    st.error(
        f"No sign-in provider is configured (PULSE_AUTH={settings.auth_mode!r}), so nobody can "
        "sign in. Development sign-in with the demo users is available only with PULSE_AUTH=dev; "
        "for anything else, configure an identity provider first."
    )
    st.stop()

st.subheader("Development sign-in")
st.info(
    "PULSE_AUTH=dev: choose a demo user to sign in as. This is for local demos and tests only; "
    "it performs no authentication.",
    icon=":material/science:",
)

try:
    groups = ui.sign_in_groups(data.sign_in_choices().to_dict("records"))
except Exception:  # the database is down or not migrated: say so, do not crash
    log.exception("could not read the development sign-in choices")
    st.error(
        "Could not read the demo users from the control plane. Check that the database is "
        "running and migrated (`pulse db status`), then reload."
    )
    st.stop()

if not groups:
    st.warning("There are no users in the control plane yet. Seed the demo data or add users, then reload.")
    st.stop()

for group in groups:
    with st.container(border=True):
        st.markdown(f"**{ui.escape_markdown(group.title)}**")
        for user in group.users:
            button_column, who_column = st.columns([2, 3], vertical_alignment="center")
            button_column.button(
                f"Sign in as {user.email}",
                key=ui.sign_in_key(user.email, group.tenant_id),
                on_click=auth.sign_in,
                args=(user.email, group.tenant_id),
                width="stretch",
            )
            roles = ", ".join(ui.role_label(role) for role in user.roles)
            teams = f" · {', '.join(user.teams)}" if user.teams else ""
            who_column.markdown(f"{ui.escape_markdown(user.name)} — {roles}{ui.escape_markdown(teams)}")
