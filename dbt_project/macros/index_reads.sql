{#- Reading a few rows of a large table by its index, for each row of a small set. -#}

{% macro lateral_index_read(relation, alias, match, columns) -%}
    {#- `cross join lateral (...) as <alias>`: for each row of the from items before it, the rows
        of `relation` (aliased `alias` inside and out) that `match` holds for, read through the
        index on the matched columns: one probe per outer row (an outer row with no match is
        dropped, as in an inner join). `match` compares the outer row's columns with `alias`'s;
        `columns`: what the subquery selects (an expression may be named with `as`).

        Why a lateral join rather than a plain one: the outer set is a batch or a handful of
        tenants, whose size the planner cannot know (a temporary table of this build, a CTE),
        and some models' selects run with nested loops disabled (macros/incremental_sprints.sql).
        Joined by hash, the planner reads the whole table to find a few thousand rows: 0.34 s of
        fct_budget_utilization's 0.40 s at 50 tenants × 2 years, and 0.3 s of
        fct_developer_sprints' select on the bench's day for its compliance alone (docs/scaling.md). `offset 0` keeps
        the subquery from being flattened into such a join. -#}
    cross join lateral (
        select {{ columns }}
        from {{ relation }} as {{ alias }}
        where {{ match }}
        offset 0
    ) as {{ alias }}
{%- endmacro %}

{% macro join_batch_by_index(relation, alias, match, columns) -%}
    {#- Join `relation` as `alias` on `match` (an inner join): in an incremental build by index,
        one probe per row of the batch (lateral_index_read, which selects `columns`); in a full
        build by hash, as the planner chooses, since every row is read anyway. -#}
    {%- if is_incremental() -%}
    {{ lateral_index_read(relation, alias, match=match, columns=columns) }}
    {%- else -%}
    inner join {{ relation }} as {{ alias }}
        on {{ match }}
    {%- endif -%}
{%- endmacro %}
