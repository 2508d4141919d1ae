{#- Incremental Done-Means-Tested marts.

    fct_work_item_compliance is a per-item model (macros/incremental.sql, per_work_item_table):
    it rebuilds the items loaded since it last ran, and those compliance_also finds. Its
    post-hook records the items it rebuilt in a change log (intermediate.compliance_changes);
    after a build in full, every tenant of the partition whole.

    fct_compliance_flags remembers its flags (when each opened, when it resolved), so it cannot
    be rebuilt from scratch; it re-evaluates only the items of its batch:
      * the entries of the change log (taken, i.e. deleted, in its own transaction, so a build
        that fails keeps them for the next);
      * items whose valid DMT exception is due within 14 days of as_of (the info flag appears
        as as_of moves on; a handful per tenant);
      * items a person resolved a flag of (control.compliance_flag_resolutions, small);
      * every item of a tenant it has no flag of yet, or of every tenant with var rebuild=true;
      * tenants with flags but no compliance row any more (their flags are resolved).
    Within the batch the model is the same as in full (previous rows merged with the failures
    of now), and only the rows that differ are written. -#}

{% macro compliance_also() -%}
    {#- fct_work_item_compliance rebuilds, besides the loaded items, those whose linked pull
        requests were counted otherwise (a pull request loaded that names the item, or no longer
        does), whose project threshold changed in control.projects, and those whose exception
        as_of has passed the expiry of. One read of the stored rows. -#}
    {{ add_changed_items(
        "select built.tenant_id, built.work_item_uid from " ~ this ~ " as built"
        ~ " left join (select tenant_id, work_item_uid, count(*) as linked from " ~ ref('int_pull_request_work_items')
        ~ " where true " ~ and_tenant() ~ " group by tenant_id, work_item_uid) as links"
        ~ " on links.tenant_id = built.tenant_id and links.work_item_uid = built.work_item_uid"
        ~ " left join " ~ source('control', 'projects') ~ " as projects"
        ~ " on projects.tenant_id = built.tenant_id and projects.key = built.project_key"
        ~ " where (built.linked_pull_requests <> coalesce(links.linked, 0)"
        ~ " or built.coverage_threshold <> coalesce(projects.dmt_coverage_threshold, 80)"
        ~ " or (built.has_valid_exception and built.dmt_exception_expires < (" ~ as_of() ~ ")::date)) "
        ~ and_tenant('built')
    ) }}
{%- endmacro %}

{% macro compliance_changes_relation() -%}
    {{ api.Relation.create(database=this.database, schema=generate_schema_name('intermediate', none), identifier='compliance_changes') }}
{%- endmacro %}

{% macro create_compliance_changes() -%}
    {#- The change log: one row per work item fct_work_item_compliance rebuilt, or per tenant it
        built whole (work_item_uid null). -#}
    create table if not exists {{ compliance_changes_relation() }} (
        tenant_id text not null,
        work_item_uid text
    )
{%- endmacro %}

{% macro log_compliance_changes() -%}
    {#- Post-hook of fct_work_item_compliance: both change logs (this one, and the done items'
        below). -#}
    {{ create_compliance_changes() }};
    insert into {{ compliance_changes_relation() }} (tenant_id, work_item_uid)
    {%- if is_incremental() %}
    select tenant_id, work_item_uid from {{ changed_items_relation() }};
    {%- else %}
    select distinct tenant_id, null::text from {{ ref('int_work_items__unioned') }} {{ tenant_filter() }};
    {%- endif %}
    {{ log_done_item_changes() }}
{%- endmacro %}

{#- The done items' change log, for fct_account_health_daily (macros/incremental_health.sql).

    The health mart counts, per tenant and day (its time zone), the items done and the
    DMT-compliant items done. Which days' counts a build of fct_work_item_compliance changed
    is known only to that build: it logs the moment done (done_at) of every item of its batch
    whose done row changed (appeared, went, or changed its done_at or is_dmt_compliant), as
    the row was and as it is; the health mart takes the entries and rebuilds from the earliest
    day. A tenant whose rows were all replaced (a build in full, raw data gone) is logged whole
    (whole_tenant). -#}

{% macro done_changes_relation() -%}
    {{ api.Relation.create(database=this.database, schema=generate_schema_name('intermediate', none), identifier='work_item_done_changes') }}
{%- endmacro %}

{% macro create_done_changes() -%}
    create table if not exists {{ done_changes_relation() }} (
        tenant_id text not null,
        done_at timestamptz,
        whole_tenant boolean not null default false
    )
{%- endmacro %}

{% macro replaced_done_items_relation() -%}
    pg_temp.replaced_done_items__{{ this.name }}
{%- endmacro %}

{% macro done_item_rows(relation) -%}
    {#- The done rows of the batch in `relation`, as the health mart counts them. -#}
    select rows.tenant_id, rows.work_item_uid, rows.done_at, rows.is_dmt_compliant
    from {{ relation }} as rows
    where rows.dmt_stage = 'done' {{ and_in_batch('rows') }}
{%- endmacro %}

{% macro keep_replaced_done_items() -%}
    {#- before_replace of fct_work_item_compliance: the done rows about to be replaced; a tenant
        about to lose its rows (its raw data is gone) is logged whole. -#}
    {{ create_done_changes() }};
    drop table if exists {{ replaced_done_items_relation() }};
    create temporary table {{ replaced_done_items_relation() }} as
        {{ done_item_rows(this) }};
    insert into {{ done_changes_relation() }} (tenant_id, done_at, whole_tenant)
    select gone.tenant_id, null, true from ({{ tenants_no_longer_loaded() }}) as gone
{%- endmacro %}

{% macro log_done_item_changes() -%}
    {{ create_done_changes() }};
    insert into {{ done_changes_relation() }} (tenant_id, done_at, whole_tenant)
    {%- if is_incremental() %}
    select coalesce(fresh.tenant_id, stale.tenant_id), moment.done_at, false
    from ({{ done_item_rows(this) }}) as fresh
    full join {{ replaced_done_items_relation() }} as stale
        on stale.tenant_id = fresh.tenant_id and stale.work_item_uid = fresh.work_item_uid
    cross join lateral (values (fresh.done_at), (stale.done_at)) as moment (done_at)
    where (fresh.done_at, fresh.is_dmt_compliant) is distinct from (stale.done_at, stale.is_dmt_compliant)
        and moment.done_at is not null
    {%- else %}
    select slug, null::timestamptz, true from {{ source('control', 'tenants') }}
    {%- if partition_tenant() is not none %} where slug = '{{ partition_tenant() }}'{% endif %}
    {%- endif %}
{%- endmacro %}

{% macro flag_items_relation() -%}
    pg_temp.flag_items__{{ this.name }}
{%- endmacro %}

{% macro take_flag_items() -%}
    {#- Pre-hook of fct_compliance_flags: the batch of items to re-evaluate (see above). -#}
    {{ create_compliance_changes() }};
    {%- set compliance = ref('fct_work_item_compliance') %}
    {%- if is_incremental() %}
    drop table if exists {{ flag_items_relation() }};
    create temporary table {{ flag_items_relation() }} (tenant_id text not null, work_item_uid text not null);
    with taken as (
        delete from {{ compliance_changes_relation() }}
        where true {{ and_tenant() }}
        returning tenant_id, work_item_uid
    ),
    -- the tenants the flags and the compliance mart hold (read by index, tenant by tenant)
    flagged as (
        {{ stored_tenants(this) }}
    ),
    assessed as (
        {{ stored_tenants(compliance) }}
    ),
    whole as (
        select tenant_id from taken where work_item_uid is null
        union
        -- a tenant with no flag yet; a tenant no longer assessed (its flags are resolved)
        select tenant_id from assessed where tenant_id not in (select tenant_id from flagged)
        union
        select tenant_id from flagged where tenant_id not in (select tenant_id from assessed)
        {%- if var('rebuild', false) %}
        union
        select tenant_id from flagged
        union
        select tenant_id from assessed
        {%- endif %}
    )
    insert into {{ flag_items_relation() }} (tenant_id, work_item_uid)
    select tenant_id, work_item_uid from taken where work_item_uid is not null
    union
    select tenant_id, work_item_uid from {{ compliance }}
    where tenant_id in (select tenant_id from whole)
    union
    select tenant_id, work_item_uid from {{ this }}
    where tenant_id in (select tenant_id from whole)
    union
    select tenant_id, work_item_uid from {{ compliance }}
    where has_valid_exception and dmt_exception_expires <= ({{ as_of() }})::date + 14 {{ and_tenant() }}
    union
    select tenant_id, work_item_uid from {{ source('control', 'compliance_flag_resolutions') }}
    {{ tenant_filter() }};
    create unique index on {{ flag_items_relation() }} (tenant_id, work_item_uid);
    analyze {{ flag_items_relation() }}
    {%- else %}
    -- built in full: every entry of the partition is done
    delete from {{ compliance_changes_relation() }} where true {{ and_tenant() }}
    {%- endif %}
{%- endmacro %}

{% macro and_flag_item_in_batch(alias=none) -%}
    {#- In an incremental build of fct_compliance_flags, restrict a query (that has a where
        clause) to the items it re-evaluates. -#}
    {%- if is_incremental() -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    and ({{ prefix }}tenant_id, {{ prefix }}work_item_uid) in (select tenant_id, work_item_uid from {{ flag_items_relation() }})
    {%- endif -%}
{%- endmacro %}
