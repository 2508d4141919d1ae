{#- Incremental by changed sprints: the sprint marts (fct_sprints, fct_developer_sprints).
    Compare macros/incremental.sql (per work item) and macros/incremental_runs.sql (per agent run).

    A sprint mart is built once in full, then, on every later build, only for the sprints of its
    partition whose inputs may have changed since it last built them; the other sprints' rows
    stay. A build:
      1. (pre-hook) collects, in a temporary table of its session, the sprints to rebuild, then
         deletes their rows (and every row of a tenant whose raw data is gone);
      2. (the model) builds the rows of exactly those sprints: its heavy scans (scope, blocked
         time, commits) are restricted to them.
    The sprints to rebuild, per tenant (an extra one only costs time, a missed one is a wrong
    number, so each rule errs on the side of rebuilding):
      * every sprint of a tenant the mart has no row of yet, and with var rebuild=true;
      * the sprint's row changed: a sprint of int_sprints_unified that is new, gone, or whose
        attributes, window or scope totals (int_sprints_unified's, with window_end_at at this
        build's as_of) differ from the mart's copy. A running or future sprint's window ends at
        as_of, so it is rebuilt on every build; a closed one's window is fixed. A sprint without
        a start or whose planned end is not after its start is always rebuilt (as_of decides
        parts of it that its window does not show);
      * its scope changed: int_sprint_scope rows of the sprint are counted and their newest
        source_loaded_at compared with what the mart saw (fct_sprints: scope_items and
        source_loaded_at): a reloaded item's rows carry a newer load, a row dropped lowers the count;
      * the figures that read other items through the scope (post-release defects: bugs loaded
        or re-linked since; Done Means Tested, which depends on as_of through exceptions'
        expiry; fct_developer_sprints' members and completed work) are recomputed in the
        pre-hook for every sprint of a tenant whose inputs moved (inputs_version: a fingerprint
        of its scope rows, items, DMT assessments and, per person, people) and compared with
        the mart's;
      * git facts changed since: int_git_moments keeps every git fact the marts count (a pull
        request's opening and merge, a review, a person's first review of it, a commit) at the
        moment it counts at, with a fingerprint of what decides how it counts. It is rebuilt per
        pull request after int_pull_requests_unified (a pull request with a raw row loaded
        since); its post-hook compares the rebuilt facts with the ones they replace and logs,
        for each sprint mart, the moment before and after of every fact that appeared, went,
        moved or changed (intermediate.git_moment_changes; a tenant whole when it is built in
        full). The mart takes its entries in its own build's transaction and rebuilds every
        sprint whose window [start_at, window_end_at] holds one. A pull request loaded again
        unchanged rebuilds nothing; one gaining a review today rebuilds the sprints holding
        today, not those of its old commits; a vote changed in place rebuilds the sprint of the
        old vote too (its moment is in the int_git_moments row it replaces);
      * fct_developer_sprints: the whole tenant when its people's identities (int_people
        person_id and github_login, which attribute commits, pull requests and reviews)
        changed: people_version.
    git_loaded_at is the newest completed dlt load of the tenant's git sources when the build
    began (stg_dlt_loads__loads), the same on every row of a tenant (the rows kept are stamped
    anew), so an incremental build's rows equal a rebuild's at the same as_of. Build with
    var rebuild=true after loading data for a past window, or when as_of moved back. After
    changing a sprint mart's logic, rebuild it with `dbt build --full-refresh --select <model>`.
    Unit tests run the full path (is_incremental false). -#}

{% macro per_sprint_table(changed, per_person=false) -%}
    {#- Config of a sprint mart (see above). `changed`: the name of a macro of statements that
        add the mart's own changed sprints to {{ changed_sprints_relation() }}; `per_person`: its
        figures read people too (inputs_versions). The pre-hook deletes what is rebuilt; the
        model appends it. -#}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_changed_sprints() }}",
        changed_sprints=changed,
        inputs_per_person=per_person
    ) }}
{%- endmacro %}

{% macro inputs_versions_relation() -%}
    pg_temp.inputs_versions__{{ this.name }}
{%- endmacro %}

{% macro changed_inputs_relation() -%}
    pg_temp.changed_inputs__{{ this.name }}
{%- endmacro %}

{% macro compute_inputs_versions() -%}
    {#- Per tenant, a fingerprint of what the figures compared through the scope read (every row's
        inputs_version): int_sprint_scope's and int_work_items_unified's rows (their number and
        newest load: a reloaded item's rows carry a newer one), fct_work_item_compliance's rows
        (their item, DMT verdict and coverage, hashed: it also moves with as_of, the projects'
        thresholds and pull-request links) and, per person, int_people's people and projects. -#}
    select
        scope.tenant_id,
        md5(
            scope.version || '|' || coalesce(items.version, '') || '|' || coalesce(assessed.version, '')
            {%- if config.get('inputs_per_person') %} || '|' || coalesce(people.version, ''){% endif %}
        ) as inputs_version
    from (
        select tenant_id, count(*) || ':' || coalesce(max(source_loaded_at)::text, '') as version
        from {{ ref('int_sprint_scope') }} {{ tenant_filter() }} group by tenant_id
    ) as scope
    left join (
        select tenant_id, count(*) || ':' || coalesce(max(source_loaded_at)::text, '') as version
        from {{ ref('int_work_items_unified') }} {{ tenant_filter() }} group by tenant_id
    ) as items on items.tenant_id = scope.tenant_id
    left join (
        select tenant_id, count(*) || ':' || sum(hashtextextended(
            work_item_uid || ':' || is_dmt_compliant::text || ':' || coalesce(dmt_coverage_pct::text, ''), 0
        )::numeric) as version
        from {{ ref('fct_work_item_compliance') }} {{ tenant_filter() }} group by tenant_id
    ) as assessed on assessed.tenant_id = scope.tenant_id
    {%- if config.get('inputs_per_person') %}
    left join (
        select tenant_id,
            md5(string_agg(person_id || ':' || coalesce(primary_project_key, ''), ',' order by person_id)) as version
        from {{ ref('int_people') }} {{ tenant_filter() }} group by tenant_id
    ) as people on people.tenant_id = scope.tenant_id
    {%- endif %}
{%- endmacro %}

{% macro inputs_versions() -%}
    {#- The fingerprints this build stamps rows with (compute_inputs_versions). -#}
    {%- if is_incremental() -%}
    select tenant_id, inputs_version from {{ inputs_versions_relation() }}
    {%- else -%}
    {{ compute_inputs_versions() }}
    {%- endif -%}
{%- endmacro %}

{% macro and_inputs_changed(alias=none) -%}
    {#- Restrict a query (that has a where clause) of the pre-hook to the tenants whose
        inputs_version moved: only their figures are computed anew and compared. -#}
    and {% if alias %}{{ alias }}.{% endif %}tenant_id in (select tenant_id from {{ changed_inputs_relation() }})
{%- endmacro %}

{% macro changed_sprints_relation() -%}
    pg_temp.changed_sprints__{{ this.name }}
{%- endmacro %}

{% macro git_watermarks_relation() -%}
    pg_temp.git_watermarks__{{ this.name }}
{%- endmacro %}

{% macro git_moment_changes_relation() -%}
    {{ api.Relation.create(database=this.database, schema=generate_schema_name('intermediate', none), identifier='git_moment_changes') }}
{%- endmacro %}

{% macro previous_moments_relation() -%}
    pg_temp.previous_moments__{{ this.name }}
{%- endmacro %}

{% macro create_git_moment_changes() -%}
    create table if not exists {{ git_moment_changes_relation() }} (
        consumer text not null,
        tenant_id text not null,
        moment timestamptz
    )
{%- endmacro %}

{% macro log_git_moment_changes() -%}
    {#- Post-hook of int_git_moments: log, for each sprint mart of its moments_for, the moments
        at which the facts it rebuilt changed: a fact (a pull request's opening or merge, a
        review, a person's first review of it, a commit) that appeared, went, moved or changed
        fingerprint logs its moments before and after. A build in full logs each tenant whole
        (moment null). -#}
    {{ create_git_moment_changes() }};
    {%- if is_incremental() %}
    {{ keep_logged_rows('pg_temp.current_moments__' ~ this.name) }};
    insert into {{ git_moment_changes_relation() }} (consumer, tenant_id, moment)
    with moments as (
        -- a fact that appeared, went, moved or changed: its moment before and after
        select distinct coalesce(fresh.tenant_id, stale.tenant_id) as tenant_id, moment
        from pg_temp.current_moments__{{ this.name }} as fresh
        full join {{ previous_moments_relation() }} as stale
            on stale.tenant_id = fresh.tenant_id and stale.pull_request_id = fresh.pull_request_id
            and stale.fact = fresh.fact
        cross join lateral (values (fresh.counted_at), (stale.counted_at)) as moments (moment)
        where (fresh.counted_at, fresh.fingerprint) is distinct from (stale.counted_at, stale.fingerprint)
            and moment is not null
    )
    select consumers.consumer, moments.tenant_id, moments.moment
    from moments
    cross join (values {% for consumer in config.get('moments_for') %}('{{ consumer }}'){% if not loop.last %}, {% endif %}{% endfor %}) as consumers (consumer)
    {%- else %}
    insert into {{ git_moment_changes_relation() }} (consumer, tenant_id, moment)
    select consumers.consumer, tenants.tenant_id, null::timestamptz
    from (select distinct tenant_id from {{ this }} {{ tenant_filter() }}) as tenants
    cross join (values {% for consumer in config.get('moments_for') %}('{{ consumer }}'){% if not loop.last %}, {% endif %}{% endfor %}) as consumers (consumer)
    {%- endif %}
{%- endmacro %}

{% macro git_watermarks() -%}
    {#- Per tenant, the newest git load this build reads (every row's git_loaded_at): the newest
        completed dlt load of its git sources (stg_dlt_loads__loads; a load id is the moment a
        raw row's _dlt_load_id names). Rows of a load not completed yet count as new next time. -#}
    {%- if is_incremental() -%}
    select tenant_id, loaded_at from {{ git_watermarks_relation() }}
    {%- else -%}
    {{ completed_git_loads() }}
    {%- endif -%}
{%- endmacro %}

{% macro completed_git_loads() -%}
    select loads.tenant_id, max(to_timestamp(loads.load_id::double precision)) as loaded_at
    from {{ ref('stg_dlt_loads__loads') }} as loads
    where loads.is_loaded and loads.source_type in ('github', 'azure_devops_git') {{ and_tenant('loads') }}
    group by loads.tenant_id
{%- endmacro %}

{% macro current_sprints() -%}
    {#- int_sprints_unified's sprints of the partition with their window at this build's as_of. -#}
    select
        sprints.*,
        least(coalesce(sprints.completed_at, sprints.end_at), {{ as_of() }}) as window_end_at
    from {{ ref('int_sprints_unified') }} as sprints
    where true {{ and_tenant('sprints') }}
{%- endmacro %}

{% macro add_changed_sprints(select_sql) -%}
    {#- Add the (tenant_id, sprint_uid) rows of select_sql to the batch. -#}
    insert into {{ changed_sprints_relation() }} (tenant_id, sprint_uid)
    select distinct extra.tenant_id, extra.sprint_uid from ({{ select_sql }}) as extra
    where extra.tenant_id is not null and extra.sprint_uid is not null
    on conflict do nothing
{%- endmacro %}

{% macro replace_changed_sprints() -%}
    {%- if is_incremental() -%}
    {%- set changed = config.get('changed_sprints') -%}
    drop table if exists {{ git_watermarks_relation() }};
    create temporary table {{ git_watermarks_relation() }} as
        {{ completed_git_loads() }};
    drop table if exists {{ changed_sprints_relation() }};
    create temporary table {{ changed_sprints_relation() }} (
        tenant_id text not null,
        sprint_uid text not null,
        primary key (tenant_id, sprint_uid)
    );
    -- every sprint of a tenant built for the first time, or of every tenant with var rebuild;
    -- sprints without a start, or whose planned end is not after their start
    {{ add_changed_sprints(
        "select sprints.tenant_id, sprints.sprint_uid from (" ~ current_sprints() ~ ") as sprints"
        ~ " where " ~ var('rebuild', false)
        ~ " or not exists (select from " ~ this ~ " as built where built.tenant_id = sprints.tenant_id)"
        ~ " or sprints.start_at is null or coalesce(sprints.completed_at, sprints.end_at) is null"
        ~ " or coalesce(sprints.completed_at, sprints.end_at) <= sprints.start_at"
    ) }};
    -- git facts changed since: every sprint whose window holds a moment int_git_moments logged
    -- for this mart (a tenant logged whole: every sprint); the entries are taken
    {{ create_git_moment_changes() }};
    {{ add_changed_sprints(
        "select sprints.tenant_id, sprints.sprint_uid from (" ~ current_sprints() ~ ") as sprints"
        ~ " inner join (select distinct tenant_id, moment from " ~ git_moment_changes_relation()
        ~ " where consumer = '" ~ this.name ~ "' " ~ and_tenant() ~ ") as moments"
        ~ " on moments.tenant_id = sprints.tenant_id"
        ~ " where moments.moment is null"
        ~ " or (sprints.start_at <= moments.moment and sprints.window_end_at >= moments.moment)"
    ) }};
    delete from {{ git_moment_changes_relation() }} where consumer = '{{ this.name }}' {{ and_tenant() }};
    -- The tenants whose figures' inputs moved: only theirs are recomputed by the mart's own rules.
    drop table if exists {{ inputs_versions_relation() }};
    create temporary table {{ inputs_versions_relation() }} as
        {{ compute_inputs_versions() }};
    drop table if exists {{ changed_inputs_relation() }};
    create temporary table {{ changed_inputs_relation() }} as
        select versions.tenant_id
        from {{ inputs_versions_relation() }} as versions
        where not exists (
            select from {{ this }} as built
            where built.tenant_id = versions.tenant_id and built.inputs_version = versions.inputs_version
        );
    analyze {{ changed_inputs_relation() }};
    -- The mart's own rules recompute figures over every scope row: a hash join of 10^5 rows
    -- and more, which the planner underestimates into a nested loop (twice as slow).
    set local enable_nestloop = off;
    set local work_mem = '64MB';
    {{ context[changed]() }};
    -- Both settings stay for the model's own select, which runs in this transaction after the
    -- hook: with a batch of a few hundred sprints the planner estimates the select's sprint and
    -- member CTEs at a row or two and loops over the aggregates of every commit and review for
    -- each member (measured on the bench day: 291 s, against 3.6 s with hash joins).
    set local enable_nestloop = off;
    analyze {{ changed_sprints_relation() }};
    -- A tenant whose raw data is gone (offboarded) keeps no rows.
    delete from {{ this }}
    where tenant_id in ({{ tenants_gone(this, ref('int_sprints_unified')) }});
    delete from {{ this }} as built
    using {{ changed_sprints_relation() }} as changed
    where built.tenant_id = changed.tenant_id and built.sprint_uid = changed.sprint_uid;
    -- the rows kept have read every git load up to now too, and their figures were compared
    -- with the inputs of now (one update: each row kept is written once)
    update {{ this }} as built
    set git_loaded_at = stamps.loaded_at,
        inputs_version = coalesce(stamps.inputs_version, built.inputs_version)
    from (
        select tenants.tenant_id, loaded.loaded_at, versions.inputs_version
        from (select distinct tenant_id from {{ this }} {{ tenant_filter() }}) as tenants
        left join {{ git_watermarks_relation() }} as loaded on loaded.tenant_id = tenants.tenant_id
        left join {{ inputs_versions_relation() }} as versions on versions.tenant_id = tenants.tenant_id
    ) as stamps
    where stamps.tenant_id = built.tenant_id
        and (built.git_loaded_at, built.inputs_version)
            is distinct from (stamps.loaded_at, coalesce(stamps.inputs_version, built.inputs_version))
    {%- else -%}
    -- a build in full takes every entry logged for it
    {{ create_git_moment_changes() }};
    delete from {{ git_moment_changes_relation() }} where consumer = '{{ this.name }}' {{ and_tenant() }}
    {%- endif -%}
{%- endmacro %}

{% macro and_sprint_in_batch(alias=none) -%}
    {#- In an incremental build, restrict a query (that has a where clause) to the batch's sprints. -#}
    {%- if is_incremental() -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    and ({{ prefix }}tenant_id, {{ prefix }}sprint_uid) in (select tenant_id, sprint_uid from {{ changed_sprints_relation() }})
    {%- endif -%}
{%- endmacro %}

{% macro people_versions() -%}
    {#- Per tenant, a fingerprint of its people's identities (person_id, github_login): what
        attributes commits, pull requests and reviews to a person. -#}
    select
        people.tenant_id,
        md5(string_agg(people.person_id || ':' || coalesce(people.github_login, ''), ',' order by people.person_id))
            as people_version
    from {{ ref('int_people') }} as people
    where true {{ and_tenant('people') }}
    group by people.tenant_id
{%- endmacro %}

{% macro scoped_items_cte(per_person) -%}
    {#- A CTE `scoped`: every int_sprint_scope row of the partition with its item's type and
        assignee (int_work_items_unified), read once for the figures compared below. -#}
    scoped as materialized (
        select scope.tenant_id, scope.sprint_uid, scope.work_item_uid, scope.is_completed, scope.points_at_end,
            items.item_type, items.assignee_person_id as person_id
        from {{ ref('int_sprint_scope') }} as scope
        inner join {{ ref('int_work_items_unified') }} as items
            on items.tenant_id = scope.tenant_id and items.work_item_uid = scope.work_item_uid
        where true {{ and_tenant('scope') }} {{ and_inputs_changed('scope') }}
            {%- if not per_person %} and scope.is_completed{% endif %}
    )
{%- endmacro %}

{% macro sprint_quality_figures_ctes(per_person) -%}
    {#- CTEs ending in `figures`: per sprint (and, per_person, per assignee) the post-release
        defects and Done-Means-Tested figures of its completed items (`scoped`), as the sprint
        marts count them; a group only when it has a defect or an assessed item. -#}
    {%- set person = ', completed.person_id' if per_person else '' -%}
    completed as (
        select tenant_id, sprint_uid, work_item_uid, item_type, person_id
        from scoped
        where is_completed {%- if per_person %} and person_id is not null{% endif %}
    ),
    defects as (
        select completed.tenant_id, completed.sprint_uid{{ person }},
            count(distinct bugs.work_item_uid) as defects
        from completed
        inner join {{ ref('int_work_items_unified') }} as bugs
            on bugs.tenant_id = completed.tenant_id and bugs.caused_by_uid = completed.work_item_uid
        where completed.item_type = 'story' and bugs.item_type = 'bug' {{ and_tenant('bugs') }} {{ and_inputs_changed('bugs') }}
        group by completed.tenant_id, completed.sprint_uid{{ person }}
    ),
    compliance as (
        select completed.tenant_id, completed.sprint_uid{{ person }},
            count(*) as assessed,
            count(*) filter (where assessed.is_dmt_compliant) as compliant,
            round(avg(assessed.dmt_coverage_pct), 2)::numeric(5, 2) as mean_coverage
        from completed
        inner join {{ ref('fct_work_item_compliance') }} as assessed
            on assessed.tenant_id = completed.tenant_id and assessed.work_item_uid = completed.work_item_uid
        where completed.item_type <> 'epic' {{ and_tenant('assessed') }} {{ and_inputs_changed('assessed') }}
        group by completed.tenant_id, completed.sprint_uid{{ person }}
    ),
    figures as (
        select
            coalesce(defects.tenant_id, compliance.tenant_id) as tenant_id,
            coalesce(defects.sprint_uid, compliance.sprint_uid) as sprint_uid,
            {%- if per_person %}
            coalesce(defects.person_id, compliance.person_id) as person_id,
            {%- endif %}
            coalesce(defects.defects, 0) as defects,
            coalesce(compliance.assessed, 0) as assessed,
            coalesce(compliance.compliant, 0) as compliant,
            compliance.mean_coverage
        from defects
        full join compliance
            on compliance.tenant_id = defects.tenant_id and compliance.sprint_uid = defects.sprint_uid
            {%- if per_person %} and compliance.person_id = defects.person_id{% endif %}
    )
{%- endmacro %}

{% macro fct_sprints_changed() -%}
    {#- fct_sprints' own changed sprints: its copy of int_sprints_unified's row and window, its
        scope (count and newest load of the int_sprint_scope rows), and its defects and DMT
        figures, each compared with what is built. -#}
    {{ add_changed_sprints(
        "select coalesce(sprints.tenant_id, built.tenant_id) as tenant_id,"
        ~ " coalesce(sprints.sprint_uid, built.sprint_uid) as sprint_uid"
        ~ " from (" ~ current_sprints() ~ ") as sprints"
        ~ " full join (select * from " ~ this ~ " " ~ tenant_filter() ~ ") as built"
        ~ " on built.tenant_id = sprints.tenant_id and built.sprint_uid = sprints.sprint_uid"
        ~ " where (sprints.source_system, sprints.sprint_name, sprints.project_key, sprints.state, sprints.start_at,"
        ~ " sprints.window_end_at, sprints.committed_items, sprints.committed_points::numeric(12, 2),"
        ~ " sprints.added_items, sprints.added_points::numeric(12, 2), sprints.removed_items,"
        ~ " sprints.removed_points::numeric(12, 2), sprints.completed_points::numeric(12, 2), sprints.completed_items)"
        ~ " is distinct from (built.source_system, built.sprint_name, built.project_key, built.state, built.start_at,"
        ~ " built.window_end_at, built.committed_items, built.committed_points, built.added_items, built.added_points,"
        ~ " built.removed_items, built.removed_points, built.completed_points, built.throughput)"
    ) }};
    {{ add_changed_sprints(
        "select coalesce(scope.tenant_id, built.tenant_id) as tenant_id,"
        ~ " coalesce(scope.sprint_uid, built.sprint_uid) as sprint_uid"
        ~ " from (select tenant_id, sprint_uid, count(*) as scope_items, max(source_loaded_at) as loaded_at"
        ~ " from " ~ ref('int_sprint_scope') ~ " " ~ tenant_filter() ~ " group by tenant_id, sprint_uid) as scope"
        ~ " full join (select * from " ~ this ~ " " ~ tenant_filter() ~ ") as built"
        ~ " on built.tenant_id = scope.tenant_id and built.sprint_uid = scope.sprint_uid"
        ~ " where (coalesce(scope.scope_items, 0), scope.loaded_at)"
        ~ " is distinct from (built.scope_items, built.source_loaded_at)"
    ) }};
    -- The defects and DMT figures: the bugs traced to a story (a few; the story's type read by index,
    -- a nested loop is right here) meet the completed scope rows by hash; the DMT assessment of
    -- every completed item needs no item read (fct_work_item_compliance has no epic).
    set local enable_nestloop = on;
    {{ add_changed_sprints(
        "with completed as materialized (select tenant_id, sprint_uid, work_item_uid from " ~ ref('int_sprint_scope')
        ~ " where is_completed " ~ and_tenant() ~ " " ~ and_inputs_changed() ~ "),"
        ~ " story_bugs as materialized (select bugs.tenant_id, bugs.work_item_uid, bugs.caused_by_uid"
        ~ " from " ~ ref('int_work_items_unified') ~ " as bugs"
        ~ " inner join " ~ ref('int_work_items_unified') ~ " as stories"
        ~ " on stories.tenant_id = bugs.tenant_id and stories.work_item_uid = bugs.caused_by_uid"
        ~ " where bugs.item_type = 'bug' and stories.item_type = 'story' " ~ and_tenant('bugs')
        ~ " " ~ and_inputs_changed('bugs') ~ "),"
        ~ " defects as (select completed.tenant_id, completed.sprint_uid, count(distinct story_bugs.work_item_uid) as defects"
        ~ " from completed inner join story_bugs"
        ~ " on story_bugs.tenant_id = completed.tenant_id and story_bugs.caused_by_uid = completed.work_item_uid"
        ~ " group by completed.tenant_id, completed.sprint_uid),"
        ~ " compliance as (select completed.tenant_id, completed.sprint_uid, count(*) as assessed,"
        ~ " count(*) filter (where assessed.is_dmt_compliant) as compliant"
        ~ " from completed inner join " ~ ref('fct_work_item_compliance') ~ " as assessed"
        ~ " on assessed.tenant_id = completed.tenant_id and assessed.work_item_uid = completed.work_item_uid"
        ~ " where true " ~ and_tenant('assessed') ~ " " ~ and_inputs_changed('assessed')
        ~ " group by completed.tenant_id, completed.sprint_uid),"
        ~ " figures as (select coalesce(defects.tenant_id, compliance.tenant_id) as tenant_id,"
        ~ " coalesce(defects.sprint_uid, compliance.sprint_uid) as sprint_uid,"
        ~ " coalesce(defects.defects, 0) as defects, coalesce(compliance.assessed, 0) as assessed,"
        ~ " coalesce(compliance.compliant, 0) as compliant"
        ~ " from defects full join compliance"
        ~ " on compliance.tenant_id = defects.tenant_id and compliance.sprint_uid = defects.sprint_uid)"
        ~ " select coalesce(figures.tenant_id, built.tenant_id) as tenant_id,"
        ~ " coalesce(figures.sprint_uid, built.sprint_uid) as sprint_uid"
        ~ " from figures"
        ~ " full join (select * from " ~ this ~ " where (post_release_defects > 0 or dmt_assessed_items > 0) "
        ~ and_tenant() ~ " " ~ and_inputs_changed() ~ ") as built"
        ~ " on built.tenant_id = figures.tenant_id and built.sprint_uid = figures.sprint_uid"
        ~ " where (figures.defects, figures.assessed, figures.compliant)"
        ~ " is distinct from (built.post_release_defects, built.dmt_assessed_items, built.dmt_compliant_items)"
    ) }}
{%- endmacro %}

{% macro developer_sprint_members(assignments_sql, sprints_sql, people_sql) -%}
    {#- Who has a row of fct_developer_sprints: the assignees (now) of a sprint's scope items and
        the people whose primary project is the sprint's. Arguments: relations or subqueries of
        (tenant_id, sprint_uid, person_id) per scope item (person_id its assignee, or null), of
        the sprints (tenant_id, sprint_uid, project_key) and of the people (tenant_id,
        person_id, primary_project_key). -#}
    select
        tenant_id,
        sprint_uid,
        person_id,
        bool_or(is_assignee) as is_assignee,
        bool_or(is_project_member) as is_project_member
    from (
        select assignments.tenant_id, assignments.sprint_uid, assignments.person_id,
               true as is_assignee, false as is_project_member
        from {{ assignments_sql }} as assignments
        where assignments.person_id is not null
        union all
        select sprints.tenant_id, sprints.sprint_uid, people.person_id, false, true
        from {{ sprints_sql }} as sprints
        inner join {{ people_sql }} as people
            on people.tenant_id = sprints.tenant_id and people.primary_project_key = sprints.project_key
    ) as candidates
    group by tenant_id, sprint_uid, person_id
{%- endmacro %}

{% macro fct_developer_sprints_changed() -%}
    {#- fct_developer_sprints' own changed sprints: every sprint of a tenant whose people's
        identities changed; a sprint whose project or window differs from the one its rows were
        built with; and a sprint whose members, completed work, defects or DMT figures, computed
        anew, differ from its rows. -#}
    {{ add_changed_sprints(
        "select sprints.tenant_id, sprints.sprint_uid from " ~ ref('int_sprints_unified') ~ " as sprints"
        ~ " inner join (select built.tenant_id from (select distinct tenant_id, people_version from " ~ this
        ~ " " ~ tenant_filter() ~ ") as built"
        ~ " left join (" ~ people_versions() ~ ") as people on people.tenant_id = built.tenant_id"
        ~ " where built.people_version is distinct from people.people_version) as changed"
        ~ " on changed.tenant_id = sprints.tenant_id"
    ) }};
    {{ add_changed_sprints(
        "select built.tenant_id, built.sprint_uid"
        ~ " from (select distinct tenant_id, sprint_uid, project_key, start_at, window_end_at from " ~ this
        ~ " " ~ tenant_filter() ~ ") as built"
        ~ " left join (" ~ current_sprints() ~ ") as sprints"
        ~ " on sprints.tenant_id = built.tenant_id and sprints.sprint_uid = built.sprint_uid"
        ~ " where (sprints.project_key, sprints.start_at, sprints.window_end_at)"
        ~ " is distinct from (built.project_key, built.start_at, built.window_end_at)"
    ) }};
    {{ add_changed_sprints(
        "with " ~ scoped_items_cte(true) ~ ","
        ~ " members as (" ~ developer_sprint_members(
            'scoped',
            "(select tenant_id, sprint_uid, project_key from " ~ ref('int_sprints_unified')
            ~ " where true " ~ and_tenant() ~ " " ~ and_inputs_changed() ~ ")",
            "(select tenant_id, person_id, primary_project_key from " ~ ref('int_people')
            ~ " where true " ~ and_tenant() ~ " " ~ and_inputs_changed() ~ ")"
        ) ~ "),"
        ~ " completion as (select tenant_id, sprint_uid, person_id,"
        ~ " count(*) as items_completed, coalesce(sum(points_at_end), 0)::numeric(12, 2) as points_completed"
        ~ " from scoped where is_completed and person_id is not null"
        ~ " group by tenant_id, sprint_uid, person_id),"
        ~ " " ~ sprint_quality_figures_ctes(true) ~ ","
        ~ " computed as (select members.tenant_id, members.sprint_uid, members.person_id, members.is_assignee,"
        ~ " members.is_project_member, coalesce(completion.items_completed, 0) as items_completed,"
        ~ " coalesce(completion.points_completed, 0)::numeric(12, 2) as points_completed,"
        ~ " coalesce(figures.defects, 0) as defects, coalesce(figures.assessed, 0) as assessed,"
        ~ " coalesce(figures.compliant, 0) as compliant, figures.mean_coverage"
        ~ " from members"
        ~ " left join completion on completion.tenant_id = members.tenant_id"
        ~ " and completion.sprint_uid = members.sprint_uid and completion.person_id = members.person_id"
        ~ " left join figures on figures.tenant_id = members.tenant_id"
        ~ " and figures.sprint_uid = members.sprint_uid and figures.person_id = members.person_id)"
        ~ " select coalesce(computed.tenant_id, built.tenant_id) as tenant_id,"
        ~ " coalesce(computed.sprint_uid, built.sprint_uid) as sprint_uid"
        ~ " from computed"
        ~ " full join (select * from " ~ this ~ " where true " ~ and_tenant() ~ " " ~ and_inputs_changed() ~ ") as built"
        ~ " on built.tenant_id = computed.tenant_id and built.sprint_uid = computed.sprint_uid"
        ~ " and built.person_id = computed.person_id"
        ~ " where (computed.is_assignee, computed.is_project_member, computed.items_completed,"
        ~ " computed.points_completed, computed.defects, computed.assessed, computed.compliant, computed.mean_coverage)"
        ~ " is distinct from (built.is_assignee, built.is_project_member, built.items_completed,"
        ~ " built.points_completed, built.defects_attributed, built.dmt_assessed_items, built.dmt_compliant_items,"
        ~ " built.mean_dmt_coverage_pct)"
    ) }}
{%- endmacro %}
