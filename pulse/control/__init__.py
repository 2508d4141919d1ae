"""The control plane's operations: tenants, teams, users, grants, projects, sources, audit.

Every function takes an open SQLAlchemy connection (the caller owns the transaction) and an
``actor`` — who made the change — and writes one audit row per change, with secrets masked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from pulse.secrets import decrypt_credentials, encrypt_credentials, mask
from pulse.settings import TENANT_SLUG_PATTERN

ROLES = ("platform_admin", "account_director", "account_manager", "org_admin", "team_lead", "member")
#: Roles granted platform-wide (no tenant): platform admins, and account directors who see
#: every tenant's account health (migration 0005).
PLATFORM_ROLES = ("platform_admin", "account_director")
SOURCE_TYPES = ("github", "jira", "clickup", "azure_boards", "azure_devops_git", "agent_platform", "claude_code")


class ControlError(ValueError):
    """A control-plane request that cannot be carried out; the message says what to do."""


@dataclass(frozen=True)
class Tenant:
    slug: str
    name: str
    timezone: str
    is_active: bool
    created_at: datetime


@dataclass(frozen=True)
class Source:
    """A configured source, without its credentials."""

    source_id: int
    tenant_id: str
    type: str
    name: str
    base_url: str
    config: dict[str, Any]
    field_mappings: dict[str, Any]
    is_active: bool
    last_sync_status: str
    last_sync_at: datetime | None
    last_sync_error: str | None
    consecutive_failures: int


def audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | None,
    tenant_id: str | None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        text(
            "insert into control.audit_log (actor, action, entity_type, entity_id, tenant_id, "
            "old_values, new_values) values (:actor, :action, :entity_type, :entity_id, :tenant_id, "
            "cast(:old as jsonb), cast(:new as jsonb))"
        ),
        {
            "actor": actor,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "tenant_id": tenant_id,
            "old": json.dumps(mask(old), default=str) if old is not None else None,
            "new": json.dumps(mask(new), default=str) if new is not None else None,
        },
    )


# -- tenants -----------------------------------------------------------------------------


def add_tenant(conn: Connection, slug: str, name: str, *, actor: str, timezone: str = "UTC") -> Tenant:
    if not re.match(TENANT_SLUG_PATTERN, slug):
        raise ControlError(
            f"Tenant slug {slug!r} is invalid: use 2-40 lowercase letters, digits or underscores, "
            "starting with a letter (it names database schemas)."
        )
    if get_tenant(conn, slug) is not None:
        raise ControlError(f"Tenant {slug!r} already exists; `pulse tenant list` shows all tenants.")
    conn.execute(
        text("insert into control.tenants (slug, name, timezone) values (:slug, :name, :tz)"),
        {"slug": slug, "name": name, "tz": timezone},
    )
    audit(
        conn,
        actor=actor,
        action="tenant.add",
        entity_type="tenant",
        entity_id=slug,
        tenant_id=slug,
        new={"slug": slug, "name": name, "timezone": timezone},
    )
    tenant = get_tenant(conn, slug)
    assert tenant is not None
    return tenant


def get_tenant(conn: Connection, slug: str) -> Tenant | None:
    row = conn.execute(
        text("select slug, name, timezone, is_active, created_at from control.tenants where slug = :slug"),
        {"slug": slug},
    ).one_or_none()
    return Tenant(**row._mapping) if row else None


def require_tenant(conn: Connection, slug: str) -> Tenant:
    tenant = get_tenant(conn, slug)
    if tenant is None:
        raise ControlError(f"No tenant {slug!r}. Create it with `pulse tenant add {slug} --name ...`.")
    return tenant


def list_tenants(conn: Connection, *, active_only: bool = False) -> list[Tenant]:
    query = "select slug, name, timezone, is_active, created_at from control.tenants"
    if active_only:
        query += " where is_active and deleted_at is null"
    return [Tenant(**row._mapping) for row in conn.execute(text(query + " order by slug"))]


def deactivate_tenant(conn: Connection, slug: str, *, actor: str) -> None:
    tenant = require_tenant(conn, slug)
    conn.execute(text("update control.tenants set is_active = false where slug = :slug"), {"slug": slug})
    audit(
        conn,
        actor=actor,
        action="tenant.deactivate",
        entity_type="tenant",
        entity_id=slug,
        tenant_id=slug,
        old={"is_active": tenant.is_active},
        new={"is_active": False},
    )


# -- teams, users, grants, projects --------------------------------------------------------


def add_team(conn: Connection, tenant_id: str, slug: str, name: str, *, actor: str) -> int:
    require_tenant(conn, tenant_id)
    team_id: int = conn.execute(
        text(
            "insert into control.teams (tenant_id, slug, name) values (:t, :slug, :name) "
            "on conflict (tenant_id, slug) do update set name = excluded.name returning team_id"
        ),
        {"t": tenant_id, "slug": slug, "name": name},
    ).scalar_one()
    audit(
        conn,
        actor=actor,
        action="team.add",
        entity_type="team",
        entity_id=str(team_id),
        tenant_id=tenant_id,
        new={"slug": slug, "name": name},
    )
    return int(team_id)


def add_user(conn: Connection, email: str, name: str, *, actor: str, external_subject: str | None = None) -> int:
    email = email.strip().lower()
    if "@" not in email:
        raise ControlError(f"{email!r} is not an email address.")
    user_id: int = conn.execute(
        text(
            "insert into control.users (email, name, external_subject) values (:email, :name, :sub) "
            "on conflict (email) do update set name = excluded.name returning user_id"
        ),
        {"email": email, "name": name, "sub": external_subject},
    ).scalar_one()
    audit(
        conn,
        actor=actor,
        action="user.add",
        entity_type="user",
        entity_id=str(user_id),
        tenant_id=None,
        new={"email": email, "name": name},
    )
    return int(user_id)


def require_user(conn: Connection, email: str) -> int:
    """The id of the user with this email; a clear error if there is none."""
    user_id: int | None = conn.execute(
        text("select user_id from control.users where email = :e"), {"e": email.strip().lower()}
    ).scalar_one_or_none()
    if user_id is None:
        raise ControlError(f"No user {email!r}; add them first with `pulse user add`.")
    return user_id


def grant_role(
    conn: Connection,
    email: str,
    role: str,
    *,
    actor: str,
    tenant_id: str | None = None,
    team_slug: str | None = None,
) -> None:
    if role not in ROLES:
        raise ControlError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    if role not in PLATFORM_ROLES and tenant_id is None:
        raise ControlError(f"Role {role!r} is scoped to a tenant: give --tenant.")
    user_id = require_user(conn, email)
    team_id: int | None = None
    if team_slug is not None:
        team_id = conn.execute(
            text("select team_id from control.teams where tenant_id = :t and slug = :s"),
            {"t": tenant_id, "s": team_slug},
        ).scalar_one_or_none()
        if team_id is None:
            raise ControlError(f"No team {team_slug!r} in tenant {tenant_id!r}.")
    conn.execute(
        text(
            "insert into control.role_grants (user_id, role, tenant_id, team_id) "
            "values (:u, :r, :t, :team) on conflict do nothing"
        ),
        {"u": user_id, "r": role, "t": tenant_id, "team": team_id},
    )
    audit(
        conn,
        actor=actor,
        action="grant.add",
        entity_type="user",
        entity_id=str(user_id),
        tenant_id=tenant_id,
        new={"email": email, "role": role, "team": team_slug},
    )


def add_project(
    conn: Connection, tenant_id: str, key: str, name: str, *, actor: str, dmt_coverage_threshold: float = 80.0
) -> int:
    require_tenant(conn, tenant_id)
    project_id: int = conn.execute(
        text(
            "insert into control.projects (tenant_id, key, name, dmt_coverage_threshold) "
            "values (:t, :k, :n, :th) returning project_id"
        ),
        {"t": tenant_id, "k": key, "n": name, "th": dmt_coverage_threshold},
    ).scalar_one()
    audit(
        conn,
        actor=actor,
        action="project.add",
        entity_type="project",
        entity_id=str(project_id),
        tenant_id=tenant_id,
        new={"key": key, "name": name, "dmt_coverage_threshold": dmt_coverage_threshold},
    )
    return int(project_id)


# -- sources -------------------------------------------------------------------------------

_SOURCE_COLUMNS = (
    "source_id, tenant_id, type, name, base_url, config, field_mappings, is_active, "
    "last_sync_status, last_sync_at, last_sync_error, consecutive_failures"
)


def add_source(
    conn: Connection,
    tenant_id: str,
    type: str,
    name: str,
    base_url: str,
    *,
    credentials: dict[str, Any],
    config: dict[str, Any],
    secret_key: str,
    actor: str,
    project_id: int | None = None,
) -> Source:
    require_tenant(conn, tenant_id)
    if type not in SOURCE_TYPES:
        raise ControlError(f"Unknown source type {type!r}; choose one of {', '.join(SOURCE_TYPES)}.")
    existing = conn.execute(
        text("select 1 from control.sources where tenant_id = :t and name = :n"), {"t": tenant_id, "n": name}
    ).first()
    if existing:
        raise ControlError(f"Tenant {tenant_id!r} already has a source named {name!r}.")
    source_id: int = conn.execute(
        text(
            "insert into control.sources (tenant_id, project_id, type, name, base_url, "
            "credentials_encrypted, config) values (:t, :p, :type, :name, :url, :cred, cast(:config as jsonb)) "
            "returning source_id"
        ),
        {
            "t": tenant_id,
            "p": project_id,
            "type": type,
            "name": name,
            "url": base_url.rstrip("/"),
            "cred": encrypt_credentials(credentials, secret_key),
            "config": json.dumps(config),
        },
    ).scalar_one()
    audit(
        conn,
        actor=actor,
        action="source.add",
        entity_type="source",
        entity_id=str(source_id),
        tenant_id=tenant_id,
        new={
            "type": type,
            "name": name,
            "base_url": base_url,
            "config": config,
            "credentials": {k: v for k, v in credentials.items()},
        },
    )
    return get_source(conn, int(source_id))


def get_source(conn: Connection, source_id: int) -> Source:
    row = conn.execute(
        text(f"select {_SOURCE_COLUMNS} from control.sources where source_id = :id"), {"id": source_id}
    ).one_or_none()
    if row is None:
        raise ControlError(f"No source with id {source_id}; `pulse source list` shows them.")
    return Source(**row._mapping)


def list_sources(conn: Connection, tenant_id: str | None = None, *, type: str | None = None) -> list[Source]:
    rows = conn.execute(
        text(
            f"select {_SOURCE_COLUMNS} from control.sources "
            "where (cast(:t as text) is null or tenant_id = :t) and (cast(:type as text) is null or type = :type) "
            "order by tenant_id, source_id"
        ),
        {"t": tenant_id, "type": type},
    )
    return [Source(**row._mapping) for row in rows]


def source_credentials(conn: Connection, source_id: int, secret_key: str) -> dict[str, Any]:
    token: str | None = conn.execute(
        text("select credentials_encrypted from control.sources where source_id = :id"), {"id": source_id}
    ).scalar_one()
    return decrypt_credentials(token, secret_key) if token else {}


def record_sync_started(conn: Connection, source_id: int) -> None:
    conn.execute(
        text("update control.sources set last_sync_status = 'running', updated_at = now() where source_id = :id"),
        {"id": source_id},
    )


def record_sync_result(conn: Connection, source_id: int, *, error: str | None, actor: str) -> None:
    """Record a finished sync; ``error`` (already free of secrets) marks it failed."""
    before = get_source(conn, source_id)
    if error is None:
        conn.execute(
            text(
                "update control.sources set last_sync_status = 'succeeded', last_sync_at = now(), "
                "last_sync_error = null, consecutive_failures = 0, updated_at = now() where source_id = :id"
            ),
            {"id": source_id},
        )
    else:
        conn.execute(
            text(
                "update control.sources set last_sync_status = 'failed', last_sync_error = :err, "
                "consecutive_failures = consecutive_failures + 1, updated_at = now() where source_id = :id"
            ),
            {"id": source_id, "err": error},
        )
    after = get_source(conn, source_id)
    audit(
        conn,
        actor=actor,
        action="source.sync",
        entity_type="source",
        entity_id=str(source_id),
        tenant_id=before.tenant_id,
        old={"last_sync_status": before.last_sync_status, "consecutive_failures": before.consecutive_failures},
        new={
            "last_sync_status": after.last_sync_status,
            "consecutive_failures": after.consecutive_failures,
            "last_sync_error": after.last_sync_error,
        },
    )


def update_source(
    conn: Connection,
    source_id: int,
    *,
    actor: str,
    base_url: str | None = None,
    config: dict[str, Any] | None = None,
    unset_config: tuple[str, ...] = (),
    credentials: dict[str, str] | None = None,
    secret_key: str | None = None,
) -> Source:
    """Change a source: its base URL, config keys (merged; ``unset_config`` removes keys) and
    credentials (merged into the stored ones, re-encrypted; needs ``secret_key``). Audited with
    old and new values, never the credentials themselves (only which keys changed)."""
    before = get_source(conn, source_id)
    new_config = {k: v for k, v in {**before.config, **(config or {})}.items() if k not in unset_config}
    new_url = base_url or before.base_url
    params: dict[str, Any] = {"id": source_id, "url": new_url, "config": json.dumps(new_config, sort_keys=True)}
    assignments = "base_url = :url, config = cast(:config as jsonb)"
    if credentials:
        if secret_key is None:
            raise ControlError("changing credentials needs the secret key")
        merged = {**source_credentials(conn, source_id, secret_key), **credentials}
        params["cred"] = encrypt_credentials(merged, secret_key)
        assignments += ", credentials_encrypted = :cred"
    conn.execute(text(f"update control.sources set {assignments}, updated_at = now() where source_id = :id"), params)
    audit(
        conn,
        actor=actor,
        action="source.update",
        entity_type="source",
        entity_id=str(source_id),
        tenant_id=before.tenant_id,
        old={"base_url": before.base_url, "config": before.config},
        new={"base_url": new_url, "config": new_config, "credentials_changed": sorted(credentials or {})},
    )
    return get_source(conn, source_id)


def set_field_mappings(conn: Connection, source_id: int, mappings: dict[str, Any], *, actor: str) -> Source:
    """Store a source's field mappings (``pulse.fieldmap`` format); audited with old and new."""
    before = get_source(conn, source_id)
    conn.execute(
        text("update control.sources set field_mappings = cast(:m as jsonb), updated_at = now() where source_id = :id"),
        {"id": source_id, "m": json.dumps(mappings, sort_keys=True)},
    )
    audit(
        conn,
        actor=actor,
        action="source.field_mappings",
        entity_type="source",
        entity_id=str(source_id),
        tenant_id=before.tenant_id,
        old={"field_mappings": before.field_mappings},
        new={"field_mappings": mappings},
    )
    return get_source(conn, source_id)


# -- compliance flags ----------------------------------------------------------------------

#: The flag types of marts.fct_compliance_flags (migration 0004 checks the same list).
COMPLIANCE_FLAG_TYPES = (
    "missing_pr_link",
    "unit_testing_not_done",
    "ac_quality",
    "unit_test_task_missing",
    "coverage_below_threshold",
    "ci_evidence_missing",
    "reviewer_signoff_missing",
    "exception_expiring",
)


def resolve_compliance_flag(
    conn: Connection, tenant_id: str, work_item_uid: str, flag_type: str, *, note: str, actor: str
) -> int:
    """Resolve a compliance flag by hand (control.compliance_flag_resolutions, audited). The
    flags mart shows it resolved by ``actor`` from its next build on, and after every rebuild."""
    require_tenant(conn, tenant_id)
    if flag_type not in COMPLIANCE_FLAG_TYPES:
        raise ControlError(f"unknown flag type {flag_type!r}: one of {', '.join(COMPLIANCE_FLAG_TYPES)}")
    if not re.fullmatch(r"[a-z_]+:.+", work_item_uid):
        raise ControlError(f"{work_item_uid!r} is no work item uid: write <tool>:<id>, e.g. jira:10042")
    if not note.strip():
        raise ControlError("say why the flag is resolved (--note)")
    resolution_id: int = conn.execute(
        text("select control.resolve_compliance_flag(:actor, :t, :item, :flag, :note)"),
        {"actor": actor, "t": tenant_id, "item": work_item_uid, "flag": flag_type, "note": note.strip()},
    ).scalar_one()
    return int(resolution_id)
