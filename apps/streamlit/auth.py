"""Who is signed in, and which tenant they look at (session state; grants come from data.py).

Only development sign-in exists so far (``PULSE_AUTH=dev``): a user picks a demo identity.
With any other ``PULSE_AUTH`` no one is ever signed in — there is no bypass — until an
identity provider is wired in (``st.login`` / ``st.user``).
"""

from __future__ import annotations

from dataclasses import dataclass

import data
import streamlit as st

from pulse.settings import Settings

DEV_AUTH = "dev"
EMAIL_KEY = "pulse_email"
TENANT_KEY = "pulse_tenant_id"


@dataclass(frozen=True)
class Viewer:
    """The signed-in user, their grants, the tenants they may see and the one selected."""

    email: str
    name: str
    grants: tuple[data.Grant, ...]
    tenants: tuple[data.Tenant, ...]
    tenant_id: str | None

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(grant.role for grant in self.grants)

    @property
    def is_platform_admin(self) -> bool:
        return data.PLATFORM_ADMIN in self.roles

    def roles_in(self, tenant_id: str | None) -> list[str]:
        """Roles that apply to ``tenant_id``: platform-wide grants and that tenant's grants."""
        return [grant.role for grant in self.grants if grant.tenant_id is None or grant.tenant_id == tenant_id]

    def teams_in(self, tenant_id: str | None) -> list[str]:
        return [grant.team_name for grant in self.grants if grant.tenant_id == tenant_id and grant.team_name]

    def tenant_name(self, tenant_id: str | None) -> str:
        names = {tenant.tenant_id: tenant.tenant_name for tenant in self.tenants}
        return names.get(tenant_id or "", tenant_id or "no tenant")


def dev_sign_in_enabled(settings: Settings) -> bool:
    return settings.auth_mode == DEV_AUTH


def sign_in(email: str, tenant_id: str | None) -> None:
    """Button callback of development sign-in: remember the user and the tenant they chose."""
    st.session_state[EMAIL_KEY] = email
    if tenant_id is None:
        st.session_state.pop(TENANT_KEY, None)
    else:
        st.session_state[TENANT_KEY] = tenant_id


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current_viewer(settings: Settings) -> Viewer | None:
    """The signed-in user, or None. Never anyone when development sign-in is off."""
    if not dev_sign_in_enabled(settings):
        return None
    email = st.session_state.get(EMAIL_KEY)
    if not isinstance(email, str) or not email:
        return None
    grants = tuple(data.grants_for(email))
    tenants = tuple(data.visible_tenants(email)) if grants else ()
    tenant_id = st.session_state.get(TENANT_KEY)
    if tenant_id is None and tenants:
        # First visit: the first tenant the user may see; kept from then on.
        tenant_id = tenants[0].tenant_id
        st.session_state[TENANT_KEY] = tenant_id
    name = grants[0].name if grants else email
    return Viewer(email, name, grants, tenants, tenant_id if isinstance(tenant_id, str) else None)


def select_tenant(tenant_id: str) -> None:
    st.session_state[TENANT_KEY] = tenant_id
