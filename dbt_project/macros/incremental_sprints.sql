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
      * git data loaded since: for a tenant with a git load completed since the mart's
        git_loaded_at, every raw git row (a pull request, a review or Azure reviewer
        vote, a commit, an Azure work-item link) loaded after the mart's git_loaded_at names
        the moments it can change a count at (git_changed_ranges): its pull request's opening
        and merge, a review's submission, a commit's authoring; every sprint whose window
        [start_at, window_end_at] meets one is rebuilt. An Azure reviewer row holds only the
        latest vote (the earlier one's moment is gone), so it reaches over every moment an
        earlier vote or comment can have had: from its first activity to its latest vote,
        reset or comment; a pull request not in int_pull_requests_unified yet, all time.
        The rows loaded since are read through the raw tables' load id indexes;
      * fct_developer_sprints: the whole tenant when its people's identities (int_people
        person_id and github_login, which attribute commits, pull requests and reviews)
        changed: people_version.
    git_loaded_at is the newest completed dlt load of the tenant's git sources when the build
    began (stg_dlt_loads__loads), the same on every row of a tenant (the rows kept are stamped
    anew), so an incremental build's rows equal a rebuild's at the same as_of. Rows of a load not
    completed then count as new at the first build after a load of the tenant completes. Two limits, as for the per-item models: a
    tenant's git loads are assumed not to overlap (a load completing after a later-started one
    could be taken as seen), and a load completing during the dbt run, after
    int_pull_requests_unified was built, is counted from that table's older rows. Build with
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

{% macro git_loads() -%}
    {#- Every raw git row of the partition as (tenant_id, pull_request_id, kind, load_id,
        loaded_at, moment, moment_to): its pull request, what it is (pull_request, review,
        reviewer, commit, link), its dlt load (the id as stored, and as a time) and the moments
        it counts at by itself (a GitHub review's submitted_at, a commit's authored_at; an Azure
        reviewer's first activity and latest act). (The staging views carry no load; this reads
        the raw tables' _dlt_load_id, the way staging's loaded_at is made.) -#}
    {%- set reviewer_moments = ['first_voted_at', 'first_commented_at', 'voted_at', 'vote_reset_at', 'last_commented_at'] -%}
    {%- set tables = [
        ('github', 'pull_requests', 'id', 'pull_request', []),
        ('github', 'reviews', 'pull_request_id', 'review', ['submitted_at']),
        ('github', 'commits', 'pull_request_id', 'commit', ['authored_at']),
        ('azure_devops_git', 'pull_requests', 'id', 'pull_request', []),
        ('azure_devops_git', 'reviewers', 'pull_request_id', 'reviewer', reviewer_moments),
        ('azure_devops_git', 'commits', 'pull_request_id', 'commit', ['authored_at']),
        ('azure_devops_git', 'pull_request_work_items', 'pull_request_id', 'link', []),
    ] -%}
    {%- for source_type, table, key, kind, moments in tables %}
    select
        raw_rows.tenant_id,
        '{{ source_type }}:' || raw_rows.{{ key }}::text as pull_request_id,
        '{{ kind }}'::text as kind,
        raw_rows._dlt_load_id as load_id,
        to_timestamp(raw_rows._dlt_load_id::double precision) as loaded_at,
        {%- if kind == 'reviewer' %}
        -- an Azure reviewer's first vote or comment, and its latest vote, reset or comment: the
        -- moments of every vote and comment it ever had lie between (see git_changed_ranges)
        least(raw_rows.first_voted_at::timestamptz, raw_rows.first_commented_at::timestamptz) as moment,
        greatest(
            {%- for column in moments %}raw_rows.{{ column }}::timestamptz{% if not loop.last %}, {% endif %}{% endfor -%}
        ) as moment_to
        {%- elif moments %}
        raw_rows.{{ moments[0] }}::timestamptz as moment,
        raw_rows.{{ moments[0] }}::timestamptz as moment_to
        {%- else %}
        null::timestamptz as moment,
        null::timestamptz as moment_to
        {%- endif %}
    from (
        {{ union_tenant_sources(source(source_type, table), source_type, [key, '_dlt_load_id'] + moments) }}
    ) as raw_rows
    where true {{ and_tenant('raw_rows') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{% macro git_changed_ranges() -%}
    {#- Per tenant, the stretches of time (from_at, to_at) that git rows loaded since the mart's
        git_loaded_at can change a count in: a pull request's opening and merge (its author,
        links and reviews are counted there), a GitHub review's submission (and its pull
        request's merge), a commit's authoring, an Azure work-item link's pull request's merge.
        An Azure reviewer row keeps only the latest vote, so the earlier one's moment is gone; but
        every vote or comment it had lies between its first activity (first vote or comment,
        which only moves earlier) and its latest vote, reset or comment (each only moves later):
        that stretch (from its pull request's opening when it has no first activity, to all
        time when it has no latest act), its pull request's opening and its merge. A pull
        request the unified table does not hold yet: all time. -#}
    with built as materialized (
        -- only the tenants with a git load completed since (the raw tables of the others are not
        -- read: a load's rows count once it has completed, as git_loaded_at does)
        select built.tenant_id, built.loaded_at
        from (
            select tenant_id, max(git_loaded_at) as loaded_at
            from {{ this }}
            {{ tenant_filter() }}
            group by tenant_id
        ) as built
        left join {{ git_watermarks_relation() }} as loaded on loaded.tenant_id = built.tenant_id
        where loaded.loaded_at is distinct from built.loaded_at
    ),
    -- tenant by tenant, only the rows loaded since, through the raw tables' load id indexes;
    -- every row of a tenant the mart has no git watermark of
    touched as (
        select built.tenant_id, loads.pull_request_id, loads.kind, loads.moment, loads.moment_to
        from built
        cross join lateral {{ rows_loaded_since(git_loads(), ['pull_request_id', 'kind', 'moment', 'moment_to'], 'built.tenant_id') }} as loads
        where built.loaded_at is null
        union all
        select built.tenant_id, loads.pull_request_id, loads.kind, loads.moment, loads.moment_to
        from built
        cross join lateral {{ rows_loaded_since(
            git_loads(), ['pull_request_id', 'kind', 'moment', 'moment_to'], 'built.tenant_id', 'built.loaded_at'
        ) }} as loads
        where built.loaded_at is not null
    ),
    with_pull_request as (
        select touched.*, pull_requests.pull_request_id is not null as is_known,
            pull_requests.opened_at, pull_requests.merged_at
        from touched
        left join {{ ref('int_pull_requests_unified') }} as pull_requests
            on pull_requests.tenant_id = touched.tenant_id and pull_requests.pull_request_id = touched.pull_request_id
    )
    select tenant_id, moment as from_at, moment_to as to_at from with_pull_request
    where kind <> 'reviewer' and moment is not null
    union
    select tenant_id, coalesce(moment, opened_at, '-infinity'::timestamptz), coalesce(moment_to, 'infinity'::timestamptz)
    from with_pull_request where kind = 'reviewer'
    union
    select tenant_id, opened_at, opened_at from with_pull_request
    where kind in ('pull_request', 'reviewer') and opened_at is not null
    union
    select tenant_id, merged_at, merged_at from with_pull_request
    where kind in ('pull_request', 'review', 'reviewer', 'link') and merged_at is not null
    union
    select tenant_id, '-infinity'::timestamptz, 'infinity'::timestamptz from with_pull_request
    where not is_known
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
    {{ index_raw_load_ids(pull_request_sources()) }};
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
    -- git data loaded since: every sprint whose window meets a moment it can change a count at
    {{ add_changed_sprints(
        "select sprints.tenant_id, sprints.sprint_uid from (" ~ current_sprints() ~ ") as sprints"
        ~ " inner join (" ~ git_changed_ranges() ~ ") as ranges on ranges.tenant_id = sprints.tenant_id"
        ~ " where sprints.start_at <= ranges.to_at and sprints.window_end_at >= ranges.from_at"
    ) }};
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
    reset enable_nestloop;
    reset work_mem;
    analyze {{ changed_sprints_relation() }};
    -- A tenant whose raw data is gone (offboarded) keeps no rows.
    delete from {{ this }}
    where tenant_id in ({{ tenants_gone(this, ref('int_sprints_unified')) }});
    delete from {{ this }} as built
    using {{ changed_sprints_relation() }} as changed
    where built.tenant_id = changed.tenant_id and built.sprint_uid = changed.sprint_uid;
    -- the rows kept have read every git load up to now too
    update {{ this }} as built
    set git_loaded_at = watermarks.loaded_at
    from (
        select tenants.tenant_id, loaded.loaded_at
        from (select distinct tenant_id from {{ this }} {{ tenant_filter() }}) as tenants
        left join {{ git_watermarks_relation() }} as loaded on loaded.tenant_id = tenants.tenant_id
    ) as watermarks
    where watermarks.tenant_id = built.tenant_id and built.git_loaded_at is distinct from watermarks.loaded_at;
    -- and their figures were compared with the inputs of now
    update {{ this }} as built
    set inputs_version = versions.inputs_version
    from {{ inputs_versions_relation() }} as versions
    where versions.tenant_id = built.tenant_id and built.inputs_version is distinct from versions.inputs_version
    {%- else -%}
    select 1
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
