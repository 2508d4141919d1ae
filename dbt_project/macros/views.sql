{#- The view materialization of every view model (the staging views and the intermediate unions).

    dbt's own materialization rebuilds a view on every run: it creates the new view under another
    name, renames the old one away, renames the new one in and drops the old one with CASCADE.
    That is four statements and a lock on the view in every run, even when nothing changed. The
    views built on it are dropped with the old one, so building one view alone (one asset in
    Dagster) drops the views built on it until they are built again.

    This one compares the view's SQL with the SQL that built it. The fingerprint of that SQL is the
    view's comment (view_fingerprint() below), written with the view, and one catalog read
    compares them:

    * same SQL: nothing is written, and no view built on it is touched;
    * changed SQL whose columns keep their names, types and order (new columns may come last):
      `create or replace view` replaces it in place, and the views built on it and its grants
      stay;
    * other changed SQL (a column renamed, removed, moved or of another type): PostgreSQL cannot
      change those in place (SQLSTATE 42P16). The view is dropped with CASCADE and created
      again. The views built on it go with it and come back when their own models build;
    * a table or materialized view of the same name (a model that was one) is dropped and
      replaced by the view.

    --full-refresh replaces every view it builds. The hooks run in every case, as in dbt's.
    The comment is the fingerprint, so the documentation cannot be persisted to a view's comment
    (persist_docs: relation); that is refused with a clear error. -#}
{%- materialization view, adapter='postgres' -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- if config.persist_relation_docs() -%}
        {%- do exceptions.raise_compiler_error(
            "persist_docs.relation is not supported on the view " ~ target_relation ~ ": its comment "
            ~ "holds the fingerprint of the SQL it was built from (dbt_project/macros/views.sql). "
            ~ "Set persist_docs: {relation: false} for views.") -%}
    {%- endif -%}
    {%- set fingerprint = view_fingerprint(sql) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- What stands under the view's name now: its kind and comment (no row: nothing). Read from
        the catalog, not dbt's relation cache: a view dropped with CASCADE earlier in this run
        (see above) is still in the cache. -#}
    {%- call statement('main', fetch_result=True) -%}
        select relkind::text, obj_description(oid, 'pg_class')
        from pg_class
        where oid = to_regclass({{ dbt.string_literal(target_relation.include(database=False)) }})
    {%- endcall -%}
    {%- set found = load_result('main')['data'] -%}
    {%- set kind = found[0][0] if found else none -%}
    {%- set unchanged = kind == 'v' and found[0][1] == fingerprint -%}

    {%- if not unchanged or should_full_refresh() -%}
        {%- if config.get('contract').enforced -%}
            {{ get_assert_columns_equivalent(sql) }}
        {%- endif -%}
        {%- call statement('main') -%}
            {{ replace_view_sql(target_relation, sql, kind) }}
        {%- endcall -%}
        {%- call statement('view_fingerprint') -%}
            comment on view {{ target_relation }} is {{ dbt.string_literal(fingerprint) }}
        {%- endcall -%}
        {%- do apply_grants(target_relation, config.get('grants'), should_revoke=(kind == 'v')) -%}
    {%- endif -%}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization -%}


{% macro view_fingerprint(sql) -%}
    {#- The comment a view built from `sql` carries: an md5 of the SQL, with this
        materialization's version (a change of how views are built rebuilds them all). -#}
    {{- 'pulse view v1, sql md5 ' ~ local_md5(sql) -}}
{%- endmacro %}


{% macro replace_view_sql(relation, sql, kind) -%}
    {#- Statements that make `relation` the view of `sql`, whatever stands under its name (`kind`:
        pg_class.relkind, none for nothing). -#}
    {%- if kind in ('r', 'p', 'm') %}
    drop {{ 'materialized view' if kind == 'm' else 'table' }} {{ relation }} cascade;
    {%- endif %}
    {%- if kind == 'v' %}
    do $pulse_view$
    begin
        execute $pulse_sql$ create or replace view {{ relation }} as (
{{ sql }}
        ) $pulse_sql$;
    exception when invalid_table_definition then
        -- its columns changed otherwise than by new ones at the end
        execute $pulse_sql$ drop view {{ relation }} cascade $pulse_sql$;
        execute $pulse_sql$ create view {{ relation }} as (
{{ sql }}
        ) $pulse_sql$;
    end
    $pulse_view$;
    {%- else %}
    create view {{ relation }} as (
{{ sql }}
    );
    {%- endif %}
{%- endmacro %}
