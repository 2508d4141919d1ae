"""The layout of a ClickUp Workspace that a load needs before it reads tasks.

ClickUp has no project, sprint or issue-type objects: a load first reads the Workspace
(``GET /team``: its members too), its custom task types, the Spaces the source covers, their
folders and lists, and the custom fields of the lists in use. Which lists are sprints is
decided by the ``sprint`` field mapping (``folder:<id>[,<id>…]``: the lists of those folders;
ClickUp's Sprints ClickApp keeps each sprint as a list in a "Sprints" folder), or, without
one, by folder name. Without field mappings the catalog proposes them the way
``pulse source discover`` does (:func:`pulse.fieldmap.propose`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.clickup import settings
from connectors.clickup.helpers import ClickUpClient, ClickUpConfigError, JsonDict, TaskContext, parse_millis
from pulse.fieldmap import FieldCandidate, field_ids, propose

#: ClickUp's custom field types, normalized to pulse.fieldmap.FIELD_TYPES.
FIELD_TYPES = {
    "number": "number",
    "currency": "number",
    "emoji": "number",
    "manual_progress": "number",
    "automatic_progress": "number",
    "short_text": "string",
    "email": "string",
    "phone": "string",
    "text": "text",
    "drop_down": "option",
    "labels": "option",
    "checkbox": "boolean",
    "date": "date",
    "url": "url",
    "users": "user",
}
SPRINT_SCHEMA_KEY = "clickup:sprint_folder"


def config_list(value: Any) -> list[str]:
    """A config value that lists ids: a list, or a comma-separated string (``--config k=a,b``)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return [str(part).strip() for part in value if str(part).strip()]
    return [str(value)]


@dataclass
class ListInfo:
    id: str
    name: str
    space: JsonDict
    folder_id: str | None
    folder_name: str | None
    start: datetime | None
    due: datetime | None
    payload: JsonDict
    is_sprint: bool = False

    def is_recent(self, now: datetime) -> bool:
        """Open, or due within the last SPRINT_REWALK_DAYS days (or without dates)."""
        return self.due is None or self.due >= now - timedelta(days=settings.SPRINT_REWALK_DAYS)


@dataclass
class Catalog:
    team: JsonDict
    task_types: dict[int, str]
    spaces: list[JsonDict]
    folders: list[JsonDict]
    lists: list[ListInfo]
    fields: dict[str, JsonDict] = field(default_factory=dict)  # field id -> field
    field_lists: dict[str, list[str]] = field(default_factory=dict)  # field id -> list ids
    mappings: dict[str, str] = field(default_factory=dict)
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def team_id(self) -> str:
        return str(self.team["id"])

    @property
    def members(self) -> list[Any]:
        members = self.team.get("members")
        return members if isinstance(members, list) else []

    @property
    def sprint_lists(self) -> list[ListInfo]:
        return [info for info in self.lists if info.is_sprint]

    def context(self) -> TaskContext:
        return TaskContext(
            field_mappings=dict(self.mappings),
            sprint_lists={info.id: info.start for info in self.sprint_lists},
            task_types=dict(self.task_types),
            space_names={str(s["id"]): str(s.get("name")) for s in self.spaces},
        )

    def candidates(self) -> list[FieldCandidate]:
        """The Workspace's fields as pulse.fieldmap candidates, and its sprint folders."""
        out: list[FieldCandidate] = []
        for field_id, item in sorted(self.fields.items(), key=lambda kv: (str(kv[1].get("name")), kv[0])):
            kind = str(item.get("type"))
            config: JsonDict = item["type_config"] if isinstance(item.get("type_config"), dict) else {}
            options: list[Any] = config["options"] if isinstance(config.get("options"), list) else []
            out.append(
                FieldCandidate(
                    id=field_id,
                    name=str(item.get("name")),
                    type=FIELD_TYPES.get(kind, "other"),
                    schema_key=kind,
                    options=tuple(str(o.get("name")) for o in options if isinstance(o, dict)),
                )
            )
        by_name: dict[str, list[str]] = {}
        for folder in self.folders:
            if re.search(settings.SPRINT_FOLDER_PATTERN, str(folder.get("name")), re.IGNORECASE):
                by_name.setdefault(str(folder.get("name")), []).append(str(folder["id"]))
        for name, ids in sorted(by_name.items()):
            out.append(
                FieldCandidate(
                    id="folder:" + ",".join(sorted(ids)),
                    name=f"Sprint (lists of the '{name}' folders)",
                    type="sprint",
                    schema_key=SPRINT_SCHEMA_KEY,
                )
            )
        return out


def build_catalog(
    client: ClickUpClient,
    config: dict[str, Any],
    field_mappings: dict[str, str] | None,
    *,
    now: datetime | None = None,
    propose_missing: bool = True,
) -> Catalog:
    """Read the Workspace's layout; without ``field_mappings`` (and with ``propose_missing``)
    propose them from its fields as ``pulse source discover`` would."""
    now = now or datetime.now(UTC)
    source = client.source_name
    teams = client.get(settings.TEAMS).get("teams") or []
    wanted = str(config.get("workspace_id") or "").strip()
    if wanted:
        team = next((t for t in teams if str(t.get("id")) == wanted), None)
        if team is None:
            seen = ", ".join(f"{t.get('id')} ({t.get('name')})" for t in teams) or "none"
            raise ClickUpConfigError(
                f"ClickUp Workspace {wanted} of source '{source}' is not one this token can see "
                f"(it sees: {seen}); set workspace_id to one of them"
            )
    elif len(teams) == 1:
        team = teams[0]
    else:
        seen = ", ".join(f"{t.get('id')} ({t.get('name')})" for t in teams) or "none"
        raise ClickUpConfigError(
            f"source '{source}' has no workspace_id and the token sees {len(teams)} Workspaces ({seen}); "
            "set workspace_id with `pulse source update --config workspace_id=…`"
        )
    team_id = str(team["id"])
    spaces = client.get(settings.SPACES.format(team_id=team_id), {"archived": "false"}).get("spaces") or []
    wanted_spaces = config_list(config.get("space_ids"))
    if wanted_spaces:
        known = {str(s.get("id")) for s in spaces}
        unknown = [s for s in wanted_spaces if s not in known]
        if unknown:
            seen = ", ".join(f"{s.get('id')} ({s.get('name')})" for s in spaces) or "none"
            raise ClickUpConfigError(
                f"ClickUp Space(s) {', '.join(unknown)} of source '{source}' are not in Workspace {team_id} "
                f"or not visible to the token (its Spaces: {seen}); fix space_ids"
            )
        spaces = [s for s in spaces if str(s.get("id")) in wanted_spaces]
    items = client.get(settings.CUSTOM_ITEMS.format(team_id=team_id)).get("custom_items") or []
    task_types = {int(i["id"]): str(i.get("name")) for i in items if isinstance(i, dict) and "id" in i}

    folders: list[JsonDict] = []
    lists: list[ListInfo] = []
    for space in spaces:
        space_id = str(space["id"])
        space_ref = {"id": space_id, "name": space.get("name")}
        for folder in (
            client.get(settings.FOLDERS.format(space_id=space_id), {"archived": "false"}).get("folders") or []
        ):
            folders.append({"id": str(folder["id"]), "name": folder.get("name"), "space_id": space_id})
            body = client.get(settings.FOLDER_LISTS.format(folder_id=folder["id"]), {"archived": "false"})
            lists += [_list_info(item, space_ref, folder) for item in body.get("lists") or [] if _has_id(item)]
        body = client.get(settings.FOLDERLESS_LISTS.format(space_id=space_id), {"archived": "false"})
        lists += [_list_info(item, space_ref, None) for item in body.get("lists") or [] if _has_id(item)]

    catalog = Catalog(team=team, task_types=task_types, spaces=spaces, folders=folders, lists=lists, loaded_at=now)
    mappings = dict(field_mappings or {})
    _mark_sprints(catalog, mappings.get("sprint"))
    for info in lists:
        if info.is_sprint and not info.is_recent(now):
            continue  # an old sprint's fields are the Workspace's fields too
        for item in client.get(settings.LIST_FIELDS.format(list_id=info.id)).get("fields") or []:
            if isinstance(item, dict) and item.get("id"):
                catalog.fields.setdefault(str(item["id"]), item)
                catalog.field_lists.setdefault(str(item["id"]), []).append(info.id)
    if not mappings and propose_missing:
        mappings = field_ids({name: m.as_json() for name, m in propose(catalog.candidates()).mappings.items()})
        _mark_sprints(catalog, mappings.get("sprint"))
    catalog.mappings = mappings
    return catalog


def _list_info(item: JsonDict, space: JsonDict, folder: JsonDict | None) -> ListInfo:
    start, due = _millis_or_none(item.get("start_date")), _millis_or_none(item.get("due_date"))
    return ListInfo(
        id=str(item["id"]),
        name=str(item.get("name")),
        space=space,
        folder_id=str(folder["id"]) if folder else None,
        folder_name=str(folder.get("name")) if folder else None,
        start=start,
        due=due,
        payload=item,
    )


def _has_id(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("id"), str | int) and not isinstance(item.get("id"), bool)


def _millis_or_none(value: Any) -> datetime | None:
    try:
        return parse_millis(value)
    except ValueError:
        return None


def _mark_sprints(catalog: Catalog, sprint_mapping: str | None) -> None:
    """Mark the sprint lists: those of the mapped folders, else of folders named like sprints."""
    if sprint_mapping and sprint_mapping.startswith("folder:"):
        folder_ids = set(config_list(sprint_mapping.removeprefix("folder:")))
        for info in catalog.lists:
            info.is_sprint = info.folder_id in folder_ids
        return
    pattern = re.compile(settings.SPRINT_FOLDER_PATTERN, re.IGNORECASE)
    for info in catalog.lists:
        info.is_sprint = info.folder_name is not None and bool(pattern.search(info.folder_name))
