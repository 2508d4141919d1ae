"""The Streamlit app against a real PostgreSQL: sign-in, the Pull requests page, tenant isolation.

Pages run in ``streamlit.testing.v1.AppTest`` (no browser). The mart is the one ``dbt build``
makes (fixture ``marts_built``); its rows here are hand-made, inserted as admin, and every
figure asserted was computed by hand (see ``ACME_PRS`` / ``GLOBEX_PRS``). Tenants,
users and rows carry ids unique to this module and are removed afterwards, so other test
modules sharing the database are not disturbed.
"""

from __future__ import annotations

import importlib
import itertools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

APP_DIR = Path(__file__).resolve().parents[2] / "apps" / "streamlit"
APP = APP_DIR / "streamlit_app.py"

ACME, GLOBEX = "apptest_acme", "apptest_globex"
ADA = "ada@apptest-acme.example"  # org admin of acme
GRACE = "grace@apptest-acme.example"  # member of acme
GUS = "gus@apptest-globex.example"  # org admin of globex
PAT = "pat@apptest-pulse.example"  # platform admin
USERS: dict[str, tuple[str, list[tuple[str, str | None]]]] = {
    ADA: ("Ada Apptest", [("org_admin", ACME)]),
    GRACE: ("Grace Apptest", [("member", ACME)]),
    GUS: ("Gus Apptest", [("org_admin", GLOBEX)]),
    PAT: ("Pat Apptest", [("platform_admin", None)]),
}
ACME_LAST_SYNC = datetime(2026, 1, 15, 8, 30, tzinfo=UTC)


@dataclass(frozen=True)
class PR:
    """A hand-made pull request; times are days (and hours) before the seed runs."""

    tenant_id: str
    repository: str
    number: int
    author: str
    state: str  # open | closed | merged
    opened_days_ago: float
    hours_to_first_review: float | None
    merged_after_hours: float | None = None
    is_draft: bool = False

    @property
    def pull_request_id(self) -> str:
        return f"{self.tenant_id}:github:{self.repository}#{self.number}"


# acme, default 90-day window: 5 PRs (the 6th is 200 days old). Merged: #1, #2, #3 → 3;
# merged without review: #3 → 1/3 = 33.3 %. Hours to first review: 2, 4, 10 → median 4.0.
ACME_PRS = [
    PR(ACME, "acme/api", 1, "ada", "merged", 30, 2, merged_after_hours=20),
    PR(ACME, "acme/api", 2, "grace", "merged", 20, 4, merged_after_hours=30),
    PR(ACME, "acme/web", 3, "grace", "merged", 10, None, merged_after_hours=24),
    PR(ACME, "acme/web", 4, "ada", "open", 5, 10),
    PR(ACME, "acme/web", 5, "grace", "open", 2, None, is_draft=True),
    PR(ACME, "acme/api", 6, "ada", "merged", 200, None, merged_after_hours=1),  # outside
]
# globex: 4 PRs. Merged: #11, #12, #14 → 3, none without review → 0.0 %.
# Hours to first review: 1, 3, 6, 8 → median (3 + 6) / 2 = 4.5.
GLOBEX_PRS = [
    PR(GLOBEX, "globex/core", 11, "gus", "merged", 15, 1, merged_after_hours=5),
    PR(GLOBEX, "globex/core", 12, "gus", "merged", 12, 3, merged_after_hours=10),
    PR(GLOBEX, "globex/core", 13, "hank", "closed", 8, 6),
    PR(GLOBEX, "globex/ui", 14, "hank", "merged", 3, 8, merged_after_hours=12),
]


@dataclass(frozen=True)
class Seed:
    now: datetime
    window: tuple[date, date]


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pr_mart(marts_built: None) -> str:
    """``marts.fct_pull_requests`` as ``dbt build`` made it: contract, RLS policy and grants."""
    return "marts.fct_pull_requests"


@pytest.fixture(scope="module")
def app_seed(pr_mart: str, db_url: str) -> Iterator[Seed]:
    """Two tenants, four users with grants, a source, and the hand-made pull requests."""
    engine = _admin(db_url)
    with engine.begin() as conn:
        _delete_seed(conn)
        now: datetime = conn.execute(sa.text("select now()")).scalar_one()
        conn.execute(
            sa.text("insert into control.tenants (slug, name) values (:slug, :name)"),
            [{"slug": ACME, "name": "Acme Apptest"}, {"slug": GLOBEX, "name": "Globex Apptest"}],
        )
        for email, (name, grants) in USERS.items():
            user_id: int = conn.execute(
                sa.text("insert into control.users (email, name) values (:e, :n) returning user_id"),
                {"e": email, "n": name},
            ).scalar_one()
            for role, tenant_id in grants:
                conn.execute(
                    sa.text("insert into control.role_grants (user_id, role, tenant_id) values (:u, :r, :t)"),
                    {"u": user_id, "r": role, "t": tenant_id},
                )
        conn.execute(
            sa.text(
                "insert into control.sources (tenant_id, type, name, base_url, last_sync_status,"
                " last_sync_at) values (:t, 'github', :n, 'http://127.0.0.1:1', 'succeeded', :at)"
            ),
            [
                {"t": ACME, "n": "apptest github", "at": ACME_LAST_SYNC},
                {"t": ACME, "n": "apptest github old", "at": ACME_LAST_SYNC - timedelta(days=3)},
            ],
        )
        conn.execute(
            sa.text(
                f"insert into {pr_mart} (pull_request_id, tenant_id, source_type, repository,"
                " pull_request_number, title, author_login, state, is_draft, opened_at,"
                " first_review_at, merged_at, closed_at, hours_to_first_review, review_count,"
                " reviewer_count, is_merged, is_merged_without_review, updated_at) values"
                " (:id, :tenant_id, 'github', :repository, :number, :title, :author, :state,"
                " :is_draft, :opened_at, :first_review_at, :merged_at, :closed_at, :hours,"
                " :reviews, :reviewers, :is_merged, :without_review, :updated_at)"
            ),
            [_row(pr, now) for pr in ACME_PRS + GLOBEX_PRS],
        )
    today = now.astimezone(UTC).date()
    try:
        yield Seed(now=now, window=(today - timedelta(days=89), today))
    finally:
        with engine.begin() as conn:
            _delete_seed(conn)


def _admin(db_url: str) -> sa.Engine:
    from pulse.db import sqlalchemy_url

    return sa.create_engine(sqlalchemy_url(db_url), poolclass=sa.NullPool)


def _row(pr: PR, now: datetime) -> dict[str, Any]:
    opened = now - timedelta(days=pr.opened_days_ago)
    reviewed = None if pr.hours_to_first_review is None else opened + timedelta(hours=pr.hours_to_first_review)
    merged = None if pr.merged_after_hours is None else opened + timedelta(hours=pr.merged_after_hours)
    closed = merged or (opened + timedelta(hours=48) if pr.state == "closed" else None)
    reviews = 0 if reviewed is None else 2
    return {
        "id": pr.pull_request_id,
        "tenant_id": pr.tenant_id,
        "repository": pr.repository,
        "number": pr.number,
        "title": f"Change {pr.number} of {pr.repository}",
        "author": pr.author,
        "state": pr.state,
        "is_draft": pr.is_draft,
        "opened_at": opened,
        "first_review_at": reviewed,
        "merged_at": merged,
        "closed_at": closed,
        "hours": pr.hours_to_first_review,
        "reviews": reviews,
        "reviewers": min(reviews, 1),
        "is_merged": merged is not None,
        "without_review": merged is not None and reviewed is None,
        "updated_at": max(t for t in (opened, reviewed, merged, closed) if t is not None),
    }


def _delete_seed(conn: sa.Connection) -> None:
    tenants = {"tenants": [ACME, GLOBEX]}
    if conn.execute(sa.text("select to_regclass('marts.fct_pull_requests')")).scalar() is not None:
        conn.execute(sa.text("delete from marts.fct_pull_requests where tenant_id = any(:tenants)"), tenants)
    conn.execute(sa.text("delete from control.sources where tenant_id = any(:tenants)"), tenants)
    conn.execute(
        sa.text("delete from control.users where email = any(:emails)"), {"emails": list(USERS)}
    )  # grants cascade
    conn.execute(sa.text("delete from control.role_grants where tenant_id = any(:tenants)"), tenants)
    conn.execute(sa.text("delete from control.teams where tenant_id = any(:tenants)"), tenants)
    conn.execute(sa.text("delete from control.tenants where slug = any(:tenants)"), tenants)


@pytest.fixture(scope="module")
def app_data(app_seed: Seed) -> Iterator[ModuleType]:
    """The app's data module, imported the way Streamlit imports it (as ``data``)."""
    sys.path.insert(0, str(APP_DIR))
    try:
        module = importlib.import_module("data")
        module.clear_cached_queries()
        yield module
    finally:
        sys.path.remove(str(APP_DIR))


@pytest.fixture
def app(app_seed: Seed, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app's entrypoint, not yet run, with development sign-in on."""
    monkeypatch.setenv("PULSE_AUTH", "dev")
    return AppTest.from_file(APP, default_timeout=60)


# -- helpers ----------------------------------------------------------------------------------


def sign_in(at: AppTest, email: str, tenant_id: str | None) -> AppTest:
    """Run the app, click ``email``'s development sign-in button and run the resulting page."""
    at.run()
    assert not at.exception, at.exception
    key = f"sign_in:{tenant_id or '_platform'}:{email}"
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def table(at: AppTest) -> Any:
    (frame,) = [element.value for element in at.dataframe]
    return frame


def chart_totals(at: AppTest) -> tuple[str, dict[str, int], int]:
    """The weekly bar chart: its x-axis title, total per series, and the number of weeks."""
    import pyarrow as pa

    (chart,) = [element for element in at.get("vega_lite_chart")]
    spec = json.loads(chart.proto.spec)
    (dataset,) = chart.proto.datasets
    frame = pa.ipc.open_stream(dataset.data.data).read_pandas()
    series = next(column for column in frame.columns if "color" in column)
    value = next(column for column in frame.columns if "value" in column)
    totals = {str(name): int(total) for name, total in frame.groupby(series)[value].sum().items()}
    return spec["encoding"]["x"]["title"], totals, frame["Week"].nunique()


def texts(elements: Any) -> list[str]:
    return [str(element.value) for element in elements]


# -- tests: sign-in -----------------------------------------------------------------------------


def test_sign_in_lists_the_users_grouped_by_tenant_with_roles(app: AppTest) -> None:
    app.run()
    assert not app.exception, app.exception

    labels = [button.label for button in app.button]
    for email in USERS:
        assert f"Sign in as {email}" in labels
    assert app.button(key=f"sign_in:{ACME}:{ADA}").label == f"Sign in as {ADA}"
    assert app.button(key=f"sign_in:{GLOBEX}:{GUS}").label == f"Sign in as {GUS}"
    assert app.button(key=f"sign_in:_platform:{PAT}").label == f"Sign in as {PAT}"
    markdown = texts(app.markdown)
    assert "**Acme Apptest**" in markdown
    assert "**Globex Apptest**" in markdown
    assert any(text.startswith("Ada Apptest — Org admin") for text in markdown)
    assert any(text.startswith("Grace Apptest — Member") for text in markdown)
    assert any(text.startswith("Pat Apptest — Platform admin") for text in markdown)
    assert not app.metric  # nothing of any tenant before sign-in


def test_without_dev_auth_there_is_no_sign_in_and_no_bypass(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_AUTH", "oidc")
    app.session_state["pulse_email"] = ADA  # a stale or forged session must not count
    app.session_state["pulse_tenant_id"] = ACME
    app.run()
    assert not app.exception, app.exception

    assert not [button for button in app.button if button.label.startswith("Sign in as")]
    assert any("No sign-in provider is configured (PULSE_AUTH='oidc')" in text for text in texts(app.error))
    assert not app.metric
    assert not app.dataframe


def test_sign_out_returns_to_sign_in(app: AppTest) -> None:
    sign_in(app, ADA, ACME)
    assert metrics(app)["PRs opened"] == "5"

    app.sidebar.button(key="sign_out").click().run()
    assert not app.exception, app.exception
    assert "pulse_email" not in app.session_state
    assert f"Sign in as {ADA}" in [button.label for button in app.button]
    assert not app.metric


# -- tests: Pull requests page ------------------------------------------------------------------


def test_acme_org_admin_sees_acme_figures_and_only_acme_rows(app: AppTest) -> None:
    sign_in(app, ADA, ACME)

    assert metrics(app) == {
        "PRs opened": "5",
        "PRs merged": "3",
        "Median hours to first review": "4.0 h",
        "Merged without review": "33.3 %",
    }
    frame = table(app)
    assert sorted(frame["pull_request_number"]) == [1, 2, 3, 4, 5]  # not #6: outside the window
    assert set(frame["repository"]) == {"acme/api", "acme/web"}
    assert frame["is_merged_without_review"].sum() == 1
    by_number = frame.set_index("pull_request_number")
    assert by_number.loc[3, "is_merged_without_review"]
    assert by_number.loc[4, "hours_to_first_review"] == 10.0
    assert list(frame["pull_request_number"]) == [5, 4, 3, 2, 1]  # most recent first
    x_title, totals, weeks = chart_totals(app)
    assert x_title == "Week starting (Monday, UTC)"
    assert totals == {"Opened": 5, "Merged": 3}
    assert weeks in (13, 14)  # every ISO week the 90 days touch

    sidebar = texts(app.sidebar.markdown) + texts(app.sidebar.caption)
    assert any("Ada Apptest" in text and ADA in text.replace("\\", "") for text in sidebar)
    assert "Role: Org admin" in sidebar
    assert "Tenant: Acme Apptest" in sidebar
    assert not app.sidebar.selectbox  # one tenant: nothing to choose
    assert "Acme Apptest · Last updated: 2026-01-15 08:30 UTC" in texts(app.caption)


def test_globex_org_admin_sees_globex_figures(app: AppTest) -> None:
    sign_in(app, GUS, GLOBEX)

    assert metrics(app) == {
        "PRs opened": "4",
        "PRs merged": "3",
        "Median hours to first review": "4.5 h",
        "Merged without review": "0.0 %",
    }
    frame = table(app)
    assert sorted(frame["pull_request_number"]) == [11, 12, 13, 14]
    assert set(frame["repository"]) == {"globex/core", "globex/ui"}
    assert "Globex Apptest · Last updated: never" in texts(app.caption)


def test_an_empty_window_shows_the_empty_state(app: AppTest) -> None:
    sign_in(app, ADA, ACME)
    app.date_input(key="pull_requests_window").set_value((date(2020, 1, 1), date(2020, 1, 31))).run()
    assert not app.exception, app.exception

    assert any(
        "No pull requests were opened in Acme Apptest between 2020-01-01 and 2020-01-31" in text
        for text in texts(app.info)
    )
    assert not app.metric
    assert not app.dataframe


def test_a_narrower_window_changes_the_figures(app: AppTest, app_seed: Seed) -> None:
    sign_in(app, ADA, ACME)
    today = app_seed.window[1]
    # The last 7 days: #4 (5 days ago, open, reviewed after 10 h) and #5 (2 days ago, draft).
    app.date_input(key="pull_requests_window").set_value((today - timedelta(days=6), today)).run()

    assert metrics(app) == {
        "PRs opened": "2",
        "PRs merged": "0",
        "Median hours to first review": "10.0 h",
        "Merged without review": "—",
    }


def test_platform_admin_picks_any_active_tenant(app: AppTest) -> None:
    sign_in(app, PAT, None)
    picker = app.sidebar.selectbox(key="tenant_picker")
    assert {"Acme Apptest", "Globex Apptest"} <= set(picker.options)  # labels: tenant names
    assert "Role: Platform admin" in texts(app.sidebar.caption)

    picker.set_value(GLOBEX).run()
    assert not app.exception, app.exception
    assert app.session_state["pulse_tenant_id"] == GLOBEX
    assert metrics(app)["PRs opened"] == "4"
    assert metrics(app)["Median hours to first review"] == "4.5 h"

    app.sidebar.selectbox(key="tenant_picker").set_value(ACME).run()
    assert metrics(app)["PRs opened"] == "5"
    assert sorted(table(app)["pull_request_number"]) == [1, 2, 3, 4, 5]


def test_member_cannot_switch_to_another_tenant(app: AppTest) -> None:
    sign_in(app, GRACE, ACME)
    assert metrics(app)["PRs opened"] == "5"
    assert "Role: Member" in texts(app.sidebar.caption)

    # Forge the session: the UI offers no other tenant, so the data layer must refuse it.
    app.session_state["pulse_tenant_id"] = GLOBEX
    app.run()
    assert not app.exception, app.exception
    assert texts(app.error) == [
        f"{GRACE} has no grant for tenant {GLOBEX}. Pick one of your tenants in the sidebar, "
        "or ask an org admin of that tenant for access."
    ]
    assert not app.metric
    assert not app.dataframe


def test_refresh_rereads_the_database(app: AppTest, db_url: str) -> None:
    sign_in(app, ADA, ACME)
    assert metrics(app)["PRs opened"] == "5"
    with _admin(db_url).begin() as conn:
        conn.execute(
            sa.text(
                "update marts.fct_pull_requests set opened_at = opened_at - interval '300 days'"
                " where pull_request_id = :id"
            ),
            {"id": ACME_PRS[4].pull_request_id},
        )
    try:
        app.run()
        assert metrics(app)["PRs opened"] == "5"  # cached (ttl 60 s)
        app.button(key="pull_requests_refresh").click().run()
        assert not app.exception, app.exception
        assert metrics(app)["PRs opened"] == "4"
    finally:
        with _admin(db_url).begin() as conn:
            conn.execute(
                sa.text(
                    "update marts.fct_pull_requests set opened_at = opened_at + interval '300 days'"
                    " where pull_request_id = :id"
                ),
                {"id": ACME_PRS[4].pull_request_id},
            )
        app.button(key="pull_requests_refresh").click().run()


# -- tests: the data module ---------------------------------------------------------------------


def test_data_layer_figures_are_computed_in_sql(app_data: ModuleType, app_seed: Seed) -> None:
    start, end = app_seed.window
    summary = app_data.pull_request_summary(ADA, ACME, start, end)
    assert summary == app_data.PullRequestSummary(
        opened=5,
        merged=3,
        merged_without_review=1,
        reviewed=3,
        median_hours_to_first_review=4.0,
        merged_without_review_pct=pytest.approx(100 / 3),
    )
    assert app_data.last_updated(ADA, ACME) == ACME_LAST_SYNC
    assert app_data.last_updated(GUS, GLOBEX) is None


def test_weekly_counts_cover_every_iso_week_of_the_window(app_data: ModuleType, app_seed: Seed) -> None:
    start, end = app_seed.window
    weekly = app_data.weekly_pull_requests(ADA, ACME, start, end)

    weeks = list(weekly["week"])
    first_monday = start - timedelta(days=start.weekday())
    assert weeks[0] == first_monday
    assert weeks[-1] == end - timedelta(days=end.weekday())
    assert all(week.weekday() == 0 for week in weeks)
    assert all((b - a).days == 7 for a, b in itertools.pairwise(weeks))
    assert int(weekly["opened"].sum()) == 5
    assert int(weekly["merged"].sum()) == 3

    def week_of(days_ago: float) -> date:
        moment = (app_seed.now - timedelta(days=days_ago)).astimezone(UTC).date()
        return moment - timedelta(days=moment.weekday())

    opened = weekly.set_index("week")["opened"]
    expected: dict[date, int] = {}
    for pr in ACME_PRS[:5]:
        expected[week_of(pr.opened_days_ago)] = expected.get(week_of(pr.opened_days_ago), 0) + 1
    assert {week: int(n) for week, n in opened.items() if n} == expected


def test_data_layer_refuses_tenants_outside_the_grants(app_data: ModuleType, app_seed: Seed) -> None:
    start, end = app_seed.window
    with pytest.raises(app_data.TenantAccessError, match=f"has no grant for tenant {GLOBEX}"):
        app_data.pull_request_summary(GRACE, GLOBEX, start, end)
    with pytest.raises(app_data.TenantAccessError, match=f"has no grant for tenant {ACME}"):
        app_data.pull_requests(GUS, ACME, start, end)
    with pytest.raises(app_data.TenantAccessError):
        app_data.last_updated("nobody@apptest.example", ACME)
    with pytest.raises(app_data.TenantAccessError, match="not a tenant id"):
        app_data.pull_request_summary(ADA, f"{ACME},{GLOBEX}", start, end)
    # The platform admin may read any active tenant.
    assert app_data.pull_request_summary(PAT, GLOBEX, start, end).opened == 4


def test_row_level_security_confines_the_reader_role(app_data: ModuleType) -> None:
    count_by_tenant = sa.text(
        "select tenant_id, count(*) from marts.fct_pull_requests"
        " where tenant_id = any(:tenants) group by tenant_id order by tenant_id"
    )
    tenants = {"tenants": [ACME, GLOBEX]}
    with app_data.scoped([ACME], email=ADA) as conn:
        assert conn.execute(sa.text("select current_user")).scalar() == "pulse_reader"
        assert conn.execute(count_by_tenant, tenants).all() == [(ACME, 6)]
    with app_data.scoped([ACME, GLOBEX], email=PAT) as conn:
        assert conn.execute(count_by_tenant, tenants).all() == [(ACME, 6), (GLOBEX, 4)]
    # Without a declaration the reader sees nothing, and the declaration ends with the transaction.
    with app_data.engine().connect() as conn:
        assert conn.execute(count_by_tenant, tenants).all() == []
        assert conn.execute(sa.text("select control.visible_tenant_ids()")).scalar() == []


def test_a_missing_mart_is_reported_as_not_ready(app_data: ModuleType) -> None:
    with (
        pytest.raises(app_data.DataNotReadyError, match=r"marts\.fct_nowhere does not exist yet"),
        app_data.scoped([ACME], email=ADA) as conn,
        app_data._reading("marts.fct_nowhere"),
    ):
        conn.execute(sa.text("select * from marts.fct_nowhere"))
