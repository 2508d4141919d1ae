{#- The view materialization of every view model (the staging views and the intermediate unions).

    dbt's own materialization rebuilds a view on every run: it creates the new view under another
    name, renames the old one away, renames the new one in and drops the old one with CASCADE.
    That is four statements and a lock on the view in every run, even when nothing changed. The
    views built on it are dropped with the old one, so building one view alone (one asset in
    Dagster) drops the views built on it until they are built again.

    This one compares the view with what built it. The fingerprint of its SQL, sql_header, grants
    and contract (view_fingerprint() below) is the view's comment, written with the view, and
    one catalog read compares them:

    * same fingerprint: nothing is written, and no view built on it is touched;
    * changed, and the view's columns keep their names, types and order (new columns may come
      last): `create or replace view` replaces it in place, and the views built on it and its
      grants stay. A temporary view of the new SQL tells its columns first;
    * changed otherwise (a column renamed, removed, moved or of another type): PostgreSQL cannot
      change those in place. The view is dropped with CASCADE (through the adapter, so dbt's
      relation cache forgets the views dropped with it) and created again. The views built on
      it come back when their own models build;
    * a table or materialized view of the same name (a model that was one) is dropped and
      replaced by the view.

    --full-refresh replaces every view it builds. The hooks run in every case, as in dbt's.
    A view reading `*` of another relation keeps the columns it had when it was written (as any
    PostgreSQL view does) until its own SQL changes; Pulse's views name their columns. The
    comment is the fingerprint, so documentation cannot be persisted to a view (persist_docs):
    that is refused with a clear error. -#}
{%- materialization view, adapter='postgres' -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- if config.persist_relation_docs() or config.persist_column_docs() -%}
        {%- do exceptions.raise_compiler_error(
            "persist_docs is not supported on the view " ~ target_relation ~ ": its comment holds "
            ~ "the fingerprint of what built it (dbt_project/macros/views.sql). "
            ~ "Set persist_docs: {relation: false, columns: false} for views.") -%}
    {%- endif -%}
    {%- set sql_header = config.get('sql_header') -%}
    {%- set grant_config = config.get('grants') -%}
    {%- set fingerprint = view_fingerprint(sql, sql_header, grant_config) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- What stands under the view's name now: its kind and comment (no row: nothing). Read from
        the catalog rather than dbt's relation cache. -#}
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
        {%- if kind in ('r', 'p', 'm') -%}
            {%- do adapter.drop_relation(target_relation.incorporate(
                type=('materialized_view' if kind == 'm' else 'table'))) -%}
            {%- set kind = none -%}
        {%- elif kind == 'v' and not view_columns_kept(target_relation, sql, sql_header) -%}
            {%- do adapter.drop_relation(target_relation) -%}
            {%- set kind = none -%}
        {%- endif -%}
        {%- call statement('main') -%}
            {{ sql_header if sql_header is not none }}
            create {{ 'or replace ' if kind == 'v' }}view {{ target_relation }} as (
{{ sql }}
            );
        {%- endcall -%}
        {%- call statement('view_fingerprint') -%}
            comment on view {{ target_relation }} is {{ dbt.string_literal(fingerprint) }}
        {%- endcall -%}
        {%- do apply_grants(target_relation, grant_config, should_revoke=(kind == 'v')) -%}
    {%- endif -%}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization -%}


{% macro view_fingerprint(sql, sql_header=none, grants=none) -%}
    {#- The comment of a view built from `sql` (with `sql_header` and `grants`): an md5 of them,
        with this materialization's version (a change of how views are built rebuilds them all).
        The database's name is left out of the SQL (dbt writes it before every relation; a view
        can read only its own database), so a copy of the database (create database … template,
        as the bench makes) keeps its views. -#}
    {%- set sql_here = sql | replace(adapter.quote(this.database) ~ '.', '') -%}
    {{- 'pulse view v1, sql md5 ' ~ local_md5(sql_here ~ '\n-- sql_header: ' ~ (sql_header or '')
        ~ '\n-- grants: ' ~ tojson(grants or {}, sort_keys=true)) -}}
{%- endmacro %}


{% macro view_columns_kept(relation, sql, sql_header) -%}
    {#- Whether `create or replace view` can turn the view `relation` into the view of `sql`: its
        columns are the first ones of `sql`'s, with the same names and types, in the same order.
        `sql`'s columns are read from a temporary view of it, dropped after. -#}
    {%- set probe = 'pulse_probe__' ~ relation.identifier -%}
    {%- call statement('view_columns_probe') -%}
        {{ sql_header if sql_header is not none }}
        create temporary view {{ adapter.quote(probe) }} as (
{{ sql }}
        )
    {%- endcall -%}
    {%- call statement('view_columns', fetch_result=True) -%}
        select not exists (
            select
            from pg_attribute as old
            left join pg_attribute as new
                on new.attrelid = to_regclass({{ dbt.string_literal('pg_temp.' ~ adapter.quote(probe)) }})
                and new.attnum = old.attnum
            where old.attrelid = to_regclass({{ dbt.string_literal(relation.include(database=False)) }})
              and old.attnum > 0 and not old.attisdropped
              and (new.attname is distinct from old.attname
                   or format_type(new.atttypid, new.atttypmod) is distinct from format_type(old.atttypid, old.atttypmod)
                   or new.attcollation is distinct from old.attcollation)
        )
    {%- endcall -%}
    {%- call statement('view_columns_probe_dropped') -%}
        drop view pg_temp.{{ adapter.quote(probe) }}
    {%- endcall -%}
    {{- return(load_result('view_columns')['data'][0][0]) -}}
{%- endmacro %}
