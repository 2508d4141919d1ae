"""Translators that make dlt and dbt assets one lineage graph with readable keys and groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData


class PulseDltTranslator(DagsterDltTranslator):
    """Raw tables are ``raw/<source type>/<table>``, the keys dbt sources declare in meta."""

    def __init__(self, source_type: str) -> None:
        self.source_type = source_type

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        resource = data.resource
        parent = getattr(resource, "_pipe", None)
        parent_name = getattr(getattr(parent, "parent", None), "name", None)
        deps = [dg.AssetKey(["raw", self.source_type, parent_name])] if parent_name else []
        return spec.replace_attributes(
            key=dg.AssetKey(["raw", self.source_type, resource.name]),
            deps=deps,
            group_name="ingest_agents" if self.source_type.startswith("agent") else f"ingest_{self.source_type}",
            description=f"Raw {resource.name} from {self.source_type}, one schema per tenant "
            f"(raw_{self.source_type}__<tenant>).",
        )


class PulseDbtTranslator(DagsterDbtTranslator):
    """Groups follow dbt folders (staging_github, marts_delivery); keys carry the schema."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        schema = dbt_resource_props.get("config", {}).get("schema") or "public"
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        # fqn: [project, layer, domain, ..., model]
        if len(fqn) >= 4:
            return f"{fqn[1]}_{fqn[2]}"
        return fqn[1] if len(fqn) >= 3 else "dbt"
