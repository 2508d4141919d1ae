"""Pulse — the Streamlit entrypoint: sign-in, the sidebar frame and role-based navigation.

Run with ``streamlit run apps/streamlit/streamlit_app.py``. The database is the one Pulse's
settings select (PULSE_HOME / PULSE_DB_PORT / PULSE_DATABASE_URL); the app connects to it
only as the row-level-security reader role (see data.py).
"""

from __future__ import annotations

import auth
import presentation as ui
import streamlit as st

from pulse.settings import get_settings

st.set_page_config(page_title="Pulse", page_icon=":material/monitoring:", layout="wide")

#: Every page of the app, by the key presentation.SECTIONS_BY_ROLE uses.
PAGES = {
    "pull_requests": st.Page(
        "app_pages/pull_requests.py",
        title="Pull requests",
        icon=":material/merge:",
        url_path="pull-requests",
    ),
    "notifications": st.Page(
        "app_pages/notifications.py",
        title="Notifications",
        icon=":material/notifications:",
        url_path="notifications",
    ),
    "budgets": st.Page(
        "app_pages/budgets.py",
        title="Budgets",
        icon=":material/savings:",
        url_path="budgets",
    ),
    "account_health": st.Page(
        "app_pages/account_health.py",
        title="Account health",
        icon=":material/ecg_heart:",
        url_path="account-health",
    ),
}

#: The "Alerts" section: page key → roles (in the selected tenant) that see it.
ALERT_PAGES: dict[str, tuple[str, ...]] = {
    "notifications": ui.ROLES,
    "budgets": ("platform_admin", "org_admin"),
}

#: The "Accounts" section (platform staff, across tenants): page key → roles held in any tenant.
ACCOUNT_PAGES: dict[str, tuple[str, ...]] = {
    "account_health": ("platform_admin", "account_director", "account_manager"),
}


def no_access() -> None:
    st.title("No access")
    st.warning(
        "Your account has no role grant for an active tenant, so there is nothing to show. "
        "Ask an org admin of your organisation (or a platform admin) for access."
    )


def sidebar(viewer: auth.Viewer) -> None:
    """Who is signed in, as what, in which tenant; the tenant picker; sign-out."""
    with st.sidebar:
        st.markdown(f"**{ui.escape_markdown(viewer.name)}**  \n{ui.escape_markdown(viewer.email)}")
        role = ui.main_role(viewer.roles_in(viewer.tenant_id))
        teams = viewer.teams_in(viewer.tenant_id)
        st.caption(
            f"Role: {ui.role_label(role) if role else 'none in this tenant'}"
            + (f" ({ui.escape_markdown(', '.join(teams))})" if teams else "")
        )
        options = [tenant.tenant_id for tenant in viewer.tenants]
        if len(options) > 1:
            names = {tenant.tenant_id: tenant.tenant_name for tenant in viewer.tenants}
            if st.session_state.get("tenant_picker") != viewer.tenant_id:
                st.session_state["tenant_picker"] = viewer.tenant_id if viewer.tenant_id in options else None
            st.selectbox(
                "Tenant",
                options,
                key="tenant_picker",
                format_func=lambda tenant_id: names.get(tenant_id, tenant_id),
                placeholder="Choose a tenant",
                on_change=lambda: auth.select_tenant(st.session_state["tenant_picker"]),
            )
        else:
            st.caption(f"Tenant: {ui.escape_markdown(viewer.tenant_name(viewer.tenant_id))}")
        st.button("Sign out", key="sign_out", on_click=auth.sign_out, icon=":material/logout:")


viewer = auth.current_viewer(get_settings())
if viewer is None:
    page = st.navigation(
        [st.Page("app_pages/sign_in.py", title="Sign in", icon=":material/login:", url_path="sign-in")],
        position="hidden",
    )
else:
    sidebar(viewer)
    sections = {title: [PAGES[key] for key in keys] for title, keys in ui.sections_for(viewer.roles).items()}
    roles_here = set(viewer.roles_in(viewer.tenant_id))
    alert_pages = [PAGES[key] for key, roles in ALERT_PAGES.items() if roles_here & set(roles)]
    if sections and alert_pages:
        sections["Alerts"] = alert_pages
    account_pages = [PAGES[key] for key, roles in ACCOUNT_PAGES.items() if viewer.roles & set(roles)]
    if account_pages:
        sections["Accounts"] = account_pages
    page = st.navigation(sections or [st.Page(no_access, title="No access", url_path="no-access")])
page.run()
