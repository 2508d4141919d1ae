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
      * what the marts read through the scope changed: the per-item models they read log, for
        each sprint mart, what their rebuild changed (intermediate.sprint_input_changes; each
        keeps the rows of its batch before rebuilding them and compares them with the new
        ones, a fingerprint of the columns the marts read):
          - int_sprint_scope: the sprint of every scope row that appeared, went or changed (for
            fct_sprints its stamp too: an item loaded again changes its sprints'
            source_loaded_at; for fct_developer_sprints its completion and points);
          - int_work_items_unified: an item whose type, assignee, cycle or lead time or story
            link changed, and a bug's story before and after (its defects);
          - int_work_item_blocked_periods (fct_sprints): an item whose blocked periods changed
            (a build of some models may rebuild them without the item's scope rows);
          - fct_work_item_compliance: an item whose DMT verdict or coverage changed, appeared
            or went (a verdict also changes with no load: a threshold, a pull-request link, an
            exception expiring at as_of);
        each mart's fingerprint holds only what it reads. An item's type, story link, flow times
        and verdict count in the sprints that completed it (completed_only), its assignee and
        blocked time in every sprint holding it. A build in full of one of them logs its
        tenants whole. The mart takes its entries in its own build's transaction (a failed
        build leaves them for the next) and rebuilds the sprints logged, the sprints that hold
        (now) an item logged, and every sprint of a tenant logged whole. What it reads is what
        changed, not the history;
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
        changed (people_version); a sprint with no row yet; and the sprints of a project a
        person's primary project moved from or to (its members by project).
    The rows kept are not written again: no column says when a row was built (how fresh the
    sources are is fct_source_freshness, one row per tenant and source), so an incremental
    build's rows equal a rebuild's at the same as_of. Build with var rebuild=true after loading
    data for a past window, or when as_of moved back. After changing a sprint mart's logic,
    rebuild it with `dbt build --full-refresh --select <model>`.
    Unit tests run the full path (is_incremental false). -#}

{% macro per_sprint_table(changed) -%}
    {#- Config of a sprint mart (see above). `changed`: the name of a macro of statements that
        add the mart's own changed sprints to {{ changed_sprints_relation() }}. The pre-hook
        deletes what is rebuilt; the model appends it. -#}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_changed_sprints() }}",
        changed_sprints=changed
    ) }}
{%- endmacro %}

{% macro taken_inputs_relation() -%}
    pg_temp.taken_inputs__{{ this.name }}
{%- endmacro %}

{% macro changed_sprints_relation() -%}
    pg_temp.changed_sprints__{{ this.name }}
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

{% macro sprint_input_changes_relation() -%}
    {{ api.Relation.create(database=target.database, schema=generate_schema_name('intermediate', none), identifier='sprint_input_changes') }}
{%- endmacro %}

{% macro create_sprint_input_changes() -%}
    {#- on-run-start: the change log of what the sprint marts read through the scope, per
        consumer (a sprint mart): a sprint to rebuild (sprint_uid); a work item (work_item_uid)
        whose sprints (now) to rebuild: every sprint holding it, or (completed_only) those that
        completed it; a tenant whole (both null). Created once before any node runs: the models
        that write and take entries run in parallel. -#}
    {%- if execute and flags.WHICH in ('build', 'run', 'retry') -%}
    create schema if not exists {{ generate_schema_name('intermediate', none) }};
    create table if not exists {{ sprint_input_changes_relation() }} (
        consumer text not null,
        tenant_id text not null,
        sprint_uid text,
        work_item_uid text,
        completed_only boolean not null default false
    )
    {%- endif -%}
{%- endmacro %}

{% macro logs_sprint_inputs(fingerprints, linked=[], per_item=false) -%}
    {#- Config of a per-item model (macros/incremental.sql) the sprint marts read through the
        scope: its pre-hook keeps the rows it is about to rebuild (capture_sprint_inputs) and its
        post-hook logs what changed (log_sprint_inputs). `fingerprints`: per sprint mart, per
        reach, an expression over the row `input_row` of what that mart reads of it. A row whose
        fingerprint changed logs, by reach: `sprint` its own sprint (a row keyed by sprint),
        `held` its item for every sprint holding it, `completed` its item for the sprints that
        completed it. A row that changed only in what a mart does not read logs nothing for it.
        `linked`: columns naming other work items whose completed sprints a change of the row
        changes too (a bug's caused_by_uid: its story's defects), before and after. `per_item`:
        the model has several rows per item and no key; an item's rows are compared together. -#}
    {{ config(post_hook="{{ log_sprint_inputs() }}", sprint_inputs={
        'fingerprints': fingerprints, 'linked': linked, 'per_item': per_item
    }) }}
{%- endmacro %}

{% macro previous_inputs_relation() -%}
    pg_temp.previous_inputs__{{ this.name }}
{%- endmacro %}

{% macro sprint_inputs_config() -%}
    {#- The model's logs_sprint_inputs config (when parsing, config.get gives no value). -#}
    {%- set inputs = config.get('sprint_inputs') -%}
    {{- return(inputs if inputs is mapping else {'fingerprints': {}, 'linked': [], 'per_item': false}) -}}
{%- endmacro %}

{% macro sprint_input_fingerprints() -%}
    {#- (consumer, reach, expression, column name) of every fingerprint of the model. -#}
    {%- set found = [] -%}
    {%- for consumer, reaches in sprint_inputs_config()['fingerprints'].items() | sort -%}
        {%- for reach, expression in reaches.items() | sort -%}
            {%- do found.append((consumer, reach, expression, 'fingerprint__' ~ consumer ~ '__' ~ reach)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(found) -}}
{%- endmacro %}

{% macro sprint_input_rows() -%}
    {#- The batch's rows of this model with their fingerprints and linked items; per item (its
        rows' fingerprints together) for a model of several rows per item without a key. -#}
    {%- set per_item = sprint_inputs_config().get('per_item') -%}
    select input_row.tenant_id, input_row.work_item_uid
        {%- for column in config.get('item_key') %}, input_row.{{ column }}{% endfor %}
        {%- for consumer, reach, expression, name in sprint_input_fingerprints() %},
        {%- if per_item %}
        md5(string_agg(md5(({{ expression }})::text), ',' order by md5(({{ expression }})::text))) as {{ name }}
        {%- else %}
        md5(({{ expression }})::text) as {{ name }}
        {%- endif %}
        {%- endfor %}
        {%- for column in sprint_inputs_config()['linked'] %}, input_row.{{ column }}{% endfor %}
    from {{ this }} as input_row
    inner join {{ changed_items_relation() }} as changed
        on changed.tenant_id = input_row.tenant_id and changed.work_item_uid = input_row.work_item_uid
    {%- if per_item %}
    group by input_row.tenant_id, input_row.work_item_uid
    {%- endif %}
{%- endmacro %}

{% macro capture_sprint_inputs() -%}
    drop table if exists {{ previous_inputs_relation() }};
    create temporary table {{ previous_inputs_relation() }} as
        {{ sprint_input_rows() }}
{%- endmacro %}

{% macro log_sprint_inputs() -%}
    {#- Post-hook of a model configured by logs_sprint_inputs: the rebuilt rows compared with
        the rows they replace (a row that appeared or went differs in every fingerprint), logged
        by consumer and reach (see there). A build in full logs each tenant whole: every tenant
        it built and every tenant with work items. -#}
    {%- set fingerprints = sprint_input_fingerprints() -%}
    {%- set linked = sprint_inputs_config()['linked'] -%}
    {%- set key = config.get('item_key') -%}
    {%- set consumers = fingerprints | map(attribute=0) | unique | list -%}
    insert into {{ sprint_input_changes_relation() }} (consumer, tenant_id, sprint_uid, work_item_uid, completed_only)
    {%- if is_incremental() %}
    with changed as materialized (
        select
            coalesce(fresh.tenant_id, stale.tenant_id) as tenant_id,
            coalesce(fresh.work_item_uid, stale.work_item_uid) as work_item_uid
            {%- for column in key %},
            coalesce(fresh.{{ column }}, stale.{{ column }}) as {{ column }}
            {%- endfor %}
            {%- for consumer, reach, expression, name in fingerprints %},
            fresh.{{ name }} is distinct from stale.{{ name }} as changed__{{ consumer }}__{{ reach }}
            {%- endfor %}
            {%- for column in linked %},
            fresh.{{ column }} as fresh_{{ column }},
            stale.{{ column }} as stale_{{ column }}
            {%- endfor %}
        from ({{ sprint_input_rows() }}) as fresh
        full join {{ previous_inputs_relation() }} as stale
            on stale.tenant_id = fresh.tenant_id and stale.work_item_uid = fresh.work_item_uid
            {%- for column in key %} and stale.{{ column }} = fresh.{{ column }}{% endfor %}
        where {% for consumer, reach, expression, name in fingerprints %}fresh.{{ name }} is distinct from stale.{{ name }}{% if not loop.last %} or {% endif %}{% endfor %}
    )
    {%- for consumer, reach, expression, name in fingerprints %}
    {%- if not loop.first %}
    union
    {%- endif %}
    {%- if reach == 'sprint' %}
    select '{{ consumer }}', tenant_id, sprint_uid, null::text, false from changed where changed__{{ consumer }}__{{ reach }}
    {%- else %}
    select '{{ consumer }}', tenant_id, null::text, work_item_uid, {{ reach == 'completed' }} from changed
    where changed__{{ consumer }}__{{ reach }}
    {%- endif %}
    {%- endfor %}
    {%- for consumer in consumers %}
    {%- set any_changed = [] %}
    {%- for fingerprint in fingerprints if fingerprint[0] == consumer %}
    {%- do any_changed.append('changed__' ~ consumer ~ '__' ~ fingerprint[1]) %}
    {%- endfor %}
    {%- for column in linked %}
    {%- for side in ['fresh', 'stale'] %}
    union
    select '{{ consumer }}', tenant_id, null::text, {{ side }}_{{ column }}, true from changed
    where ({{ any_changed | join(' or ') }}) and {{ side }}_{{ column }} is not null
    {%- endfor %}
    {%- endfor %}
    {%- endfor %}
    {%- else %}
    -- every tenant built, and every tenant with work items (one whose rows all went too)
    select consumers.consumer, tenants.tenant_id, null::text, null::text, false
    from (
        select tenant_id from {{ this }} {{ tenant_filter() }}
        union
        select tenant_id from {{ ref('int_work_items__unioned') }} {{ tenant_filter() }}
    ) as tenants
    cross join (values {% for consumer in consumers %}('{{ consumer }}'){% if not loop.last %}, {% endif %}{% endfor %}) as consumers (consumer)
    {%- endif %}
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
    {{ drop_retired_columns(['git_loaded_at', 'inputs_version']) }};
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
    -- what changed of the scope, items and DMT assessments: the sprints the writers logged for
    -- this mart (taken), those holding (now) an item they logged (or, completed_only, those that
    -- completed it), every sprint of a tenant logged whole
    drop table if exists {{ taken_inputs_relation() }};
    create temporary table {{ taken_inputs_relation() }} (
        tenant_id text not null, sprint_uid text, work_item_uid text, completed_only boolean not null
    );
    with taken as (
        delete from {{ sprint_input_changes_relation() }}
        where consumer = '{{ this.name }}' {{ and_tenant() }}
        returning tenant_id, sprint_uid, work_item_uid, completed_only
    )
    insert into {{ taken_inputs_relation() }} (tenant_id, sprint_uid, work_item_uid, completed_only)
    select distinct tenant_id, sprint_uid, work_item_uid, completed_only from taken;
    analyze {{ taken_inputs_relation() }};
    {{ add_changed_sprints(
        "select taken.tenant_id, taken.sprint_uid from " ~ taken_inputs_relation() ~ " as taken"
        ~ " where taken.sprint_uid is not null"
        ~ " union all"
        ~ " select scope.tenant_id, scope.sprint_uid from " ~ taken_inputs_relation() ~ " as taken"
        ~ " inner join " ~ ref('int_sprint_scope') ~ " as scope"
        ~ " on scope.tenant_id = taken.tenant_id and scope.work_item_uid = taken.work_item_uid"
        ~ " where taken.work_item_uid is not null and (scope.is_completed or not taken.completed_only)"
        ~ " union all"
        ~ " select sprints.tenant_id, sprints.sprint_uid from (" ~ current_sprints() ~ ") as sprints"
        ~ " inner join " ~ taken_inputs_relation() ~ " as taken on taken.tenant_id = sprints.tenant_id"
        ~ " where taken.sprint_uid is null and taken.work_item_uid is null"
    ) }};
    {{ context[changed]() }};
    -- For the model's own select, which runs in this transaction after the hook: with a batch
    -- of a few hundred sprints the planner estimates the select's sprint and member CTEs at a
    -- row or two and loops over the aggregates of every commit and review for each member
    -- (measured on the bench day: 291 s, against 3.6 s with hash joins).
    set local enable_nestloop = off;
    set local work_mem = '64MB';
    analyze {{ changed_sprints_relation() }};
    -- A tenant whose raw data is gone (offboarded) keeps no rows.
    delete from {{ this }}
    where tenant_id in ({{ tenants_gone(this, ref('int_sprints_unified')) }});
    delete from {{ this }} as built
    using {{ changed_sprints_relation() }} as changed
    where built.tenant_id = changed.tenant_id and built.sprint_uid = changed.sprint_uid
    {%- else -%}
    -- a build in full takes every entry logged for it
    {{ create_git_moment_changes() }};
    delete from {{ git_moment_changes_relation() }} where consumer = '{{ this.name }}' {{ and_tenant() }};
    delete from {{ sprint_input_changes_relation() }} where consumer = '{{ this.name }}' {{ and_tenant() }}
    {%- endif -%}
{%- endmacro %}

{% macro drop_retired_columns(columns) -%}
    {#- Drop columns the model no longer has from its table as built before (on_schema_change
        'fail' would stop an incremental build otherwise): the sprint marts' git_loaded_at, a
        stamp of every row with the tenant's newest git load that cost a rewrite of every kept
        row each day (fct_source_freshness says it per tenant now), and inputs_version, a
        fingerprint of their inputs before the marts logged what changed. Looks in the catalog
        first, so a table without them is not locked; `if exists`, for two partitions' builds
        that both saw the column (the second waits for the first's lock, then finds it gone). -#}
    do $$
    declare
        retired text;
    begin
        foreach retired in array array[{% for column in columns %}'{{ column }}'{% if not loop.last %}, {% endif %}{% endfor %}]::text[] loop
            if exists (
                select from pg_attribute
                where attrelid = '{{ this }}'::regclass and attname = retired and not attisdropped
            ) then
                execute format('alter table %s drop column if exists %I', '{{ this }}', retired);
            end if;
        end loop;
    end
    $$
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

{% macro fct_sprints_changed() -%}
    {#- fct_sprints' own changed sprints: its copy of int_sprints_unified's row and window
        differs (a sprint new, gone, re-dated, closed or with other scope totals). -#}
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
        built with, or that has no row; and the sprints of the projects a person's primary
        project moved from or to (its members by project). -#}
    {{ add_changed_sprints(
        "select sprints.tenant_id, sprints.sprint_uid from " ~ ref('int_sprints_unified') ~ " as sprints"
        ~ " inner join (select built.tenant_id from (select distinct tenant_id, people_version from " ~ this
        ~ " " ~ tenant_filter() ~ ") as built"
        ~ " left join (" ~ people_versions() ~ ") as people on people.tenant_id = built.tenant_id"
        ~ " where built.people_version is distinct from people.people_version) as changed"
        ~ " on changed.tenant_id = sprints.tenant_id"
    ) }};
    {{ add_changed_sprints(
        "select coalesce(sprints.tenant_id, built.tenant_id) as tenant_id,"
        ~ " coalesce(sprints.sprint_uid, built.sprint_uid) as sprint_uid"
        ~ " from (select distinct tenant_id, sprint_uid, project_key, start_at, window_end_at from " ~ this
        ~ " " ~ tenant_filter() ~ ") as built"
        ~ " full join (" ~ current_sprints() ~ ") as sprints"
        ~ " on sprints.tenant_id = built.tenant_id and sprints.sprint_uid = built.sprint_uid"
        ~ " where (sprints.project_key, sprints.start_at, sprints.window_end_at)"
        ~ " is distinct from (built.project_key, built.start_at, built.window_end_at)"
    ) }};
    {#- A person's project membership as built (their rows marked is_project_member) against
        int_people's primary project now: a membership new or gone rebuilds that project's
        sprints. A primary project without sprints stays unmatched (and rebuilds nothing). -#}
    {{ add_changed_sprints(
        "select sprints.tenant_id, sprints.sprint_uid from " ~ ref('int_sprints_unified') ~ " as sprints"
        ~ " inner join (select coalesce(people.tenant_id, built.tenant_id) as tenant_id,"
        ~ " coalesce(people.project_key, built.project_key) as project_key"
        ~ " from (select tenant_id, person_id, primary_project_key as project_key from " ~ ref('int_people')
        ~ " where primary_project_key is not null " ~ and_tenant() ~ ") as people"
        ~ " full join (select distinct tenant_id, person_id, project_key from " ~ this
        ~ " where is_project_member " ~ and_tenant() ~ ") as built"
        ~ " on built.tenant_id = people.tenant_id and built.person_id = people.person_id"
        ~ " and built.project_key = people.project_key"
        ~ " where people.person_id is null or built.person_id is null) as moved"
        ~ " on moved.tenant_id = sprints.tenant_id and moved.project_key = sprints.project_key"
        ~ " where true " ~ and_tenant('sprints')
    ) }}
{%- endmacro %}
