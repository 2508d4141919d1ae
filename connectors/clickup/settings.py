"""Endpoints, page sizes, windows and retry limits of the ClickUp connector."""

from __future__ import annotations

DEFAULT_BASE_URL = "https://api.clickup.com"
USER_AGENT = "pulse-clickup-connector"

# Endpoints (relative to the base URL).
USER = "/api/v2/user"
TEAMS = "/api/v2/team"
SPACES = "/api/v2/team/{team_id}/space"
CUSTOM_ITEMS = "/api/v2/team/{team_id}/custom_item"
FOLDERS = "/api/v2/space/{space_id}/folder"
FOLDERLESS_LISTS = "/api/v2/space/{space_id}/list"
FOLDER_LISTS = "/api/v2/folder/{folder_id}/list"
LIST_FIELDS = "/api/v2/list/{list_id}/field"
LIST_TASKS = "/api/v2/list/{list_id}/task"
TIME_IN_STATUS = "/api/v2/task/{task_id}/time_in_status"
BULK_TIME_IN_STATUS = "/api/v2/task/bulk_time_in_status/task_ids"

#: ClickUp lists 100 tasks a page, and takes at most 100 task ids in ``bulk_time_in_status``.
#: The source's ``page_size`` is the number of task ids asked per bulk request.
MAX_BULK_TASK_IDS = 100
PAGE_SIZE = 100
#: Guard against an API that never says ``last_page``: no list has more pages than this.
MAX_PAGES = 10_000

#: ``date_updated_gt`` is sent this many seconds before the stored cursor (dlt's ``lag``):
#: a task saved just before the last load but indexed just after it is not missed; merge on
#: the task id absorbs what comes twice.
CURSOR_OVERLAP_SECONDS = 120

#: A sprint list is walked for its members on every load while it is open and for this many
#: days after its due date (late moves are still seen); older sprint lists were walked at
#: least once and keep the memberships then recorded.
SPRINT_REWALK_DAYS = 14

#: Names of the folders that hold sprint lists when no ``sprint`` mapping says which (ClickUp's
#: Sprints ClickApp names its folder "Sprints"; some teams say "Iterations").
SPRINT_FOLDER_PATTERN = r"\b(sprints?|iterations?)\b"
