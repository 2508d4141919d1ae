{#- Incremental by changed tenants: a small per-tenant table (int_people, stg_github__users) whose
    every row reads much of its tenant's raw data (users, work items, pull requests, commits), so
    that deriving it anew costs seconds, while its inputs change only when the tenant's data is
    loaded.

    Each row carries loads_version, a fingerprint of its tenant's loads when the build began: per
    source type, the newest dlt load of the tenant (stg_dlt_loads__loads: every source's
    _dlt_loads), and the newest load and the number of the tenant's work items
    (int_work_items__unioned). Raw data only changes through a dlt load, which ends by writing
    its _dlt_loads row; a tool added or dropped adds or drops its source type. A build (pre-hook)
    computes the fingerprint of every tenant of the partition, deletes the rows of the tenants
    whose fingerprint differs from their rows' (or that have no row, or every tenant with var
    rebuild=true) and of the tenants that have none (their data is gone), and the model builds the
    rows of exactly the tenants deleted. A tenant's rows equal a rebuild's at the same moment: a
    tenant not rebuilt had no load since. The limit is the git marts' (incremental_sprints.sql):
    rows of a load still under way (no _dlt_loads row yet) that are not work items count when it
    completes. After changing the model's logic, `dbt build --full-refresh --select <model>`. -#}

{% macro per_tenant_loads_table(key, source_types, work_items=true) -%}
    {#- Config of such a table (see above): `key` its unique columns, `source_types` the dlt
        sources whose loads it reads (stg_dlt_loads__loads.source_type), `work_items` whether
        it reads int_work_items__unioned (then part of the fingerprint; the model passes the
        same to loads_versions()). -#}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ replace_changed_tenants() }}",
        indexes=[{'columns': key, 'unique': true}],
        loaded_source_types=source_types,
        loads_work_items=work_items
    ) }}
{%- endmacro %}

{% macro changed_tenants_relation() -%}
    pg_temp.changed_tenants__{{ this.name }}
{%- endmacro %}

{% macro tenant_loads_relation() -%}
    pg_temp.tenant_loads__{{ this.name }}
{%- endmacro %}

{% macro tenant_loads_versions(work_items=true) -%}
    {#- Per tenant of the partition, the fingerprint of its loads (see above); without its work
        items' part for a model that does not read them. -#}
    select
        {% if work_items %}coalesce(loads.tenant_id, items.tenant_id){% else %}loads.tenant_id{% endif %} as tenant_id,
        md5(coalesce(loads.loads, '') {%- if work_items %} || '|' || coalesce(items.items, ''){% endif %}) as loads_version
    from (
        select tenant_id, string_agg(source_type || ':' || load_id, ',' order by source_type) as loads
        from (
            select tenant_id, source_type, max(load_id) as load_id
            from {{ ref('stg_dlt_loads__loads') }}
            where source_type in ('{{ (config.get('loaded_source_types') or []) | join("', '") }}') {{ and_tenant() }}
            group by tenant_id, source_type
        ) as newest
        group by tenant_id
    ) as loads
    {%- if work_items %}
    full join (
        select tenant_id, max(loaded_at)::text || ':' || count(*) as items
        from {{ ref('int_work_items__unioned') }}
        {{ tenant_filter() }}
        group by tenant_id
    ) as items
        on items.tenant_id = loads.tenant_id
    {%- endif %}
{%- endmacro %}

{% macro loads_versions(work_items=true) -%}
    {#- The fingerprints this build stamps rows with (`work_items`: as the model's config). -#}
    {%- if is_incremental() -%}
    select tenant_id, loads_version from {{ tenant_loads_relation() }}
    {%- else -%}
    {{ tenant_loads_versions(work_items) }}
    {%- endif -%}
{%- endmacro %}

{% macro replace_changed_tenants() -%}
    {%- if is_incremental() -%}
    drop table if exists {{ tenant_loads_relation() }};
    create temporary table {{ tenant_loads_relation() }} as
        {{ tenant_loads_versions(config.get('loads_work_items')) }};
    drop table if exists {{ changed_tenants_relation() }};
    create temporary table {{ changed_tenants_relation() }} as
        select loaded.tenant_id
        from {{ tenant_loads_relation() }} as loaded
        where {{ var('rebuild', false) }} or not exists (
            select from {{ this }} as built
            where built.tenant_id = loaded.tenant_id and built.loads_version = loaded.loads_version
        );
    analyze {{ changed_tenants_relation() }};
    -- A tenant whose raw data is gone keeps no rows; a changed one is built anew.
    delete from {{ this }} as built
    where (
        not exists (select from {{ tenant_loads_relation() }} as loaded where loaded.tenant_id = built.tenant_id)
        or built.tenant_id in (select tenant_id from {{ changed_tenants_relation() }})
    ) {{ and_tenant('built') }}
    {%- endif -%}
{%- endmacro %}

{% macro and_tenant_in_batch(alias=none) -%}
    {#- In an incremental build, restrict a query (that has a where clause) to the changed tenants. -#}
    {%- if is_incremental() -%}
    and {% if alias %}{{ alias }}.{% endif %}tenant_id in (select tenant_id from {{ changed_tenants_relation() }})
    {%- endif -%}
{%- endmacro %}
