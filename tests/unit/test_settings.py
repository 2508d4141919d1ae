from __future__ import annotations

import pytest

from pulse.settings import raw_schema


def test_raw_schemas_follow_the_one_pattern_dbt_reads() -> None:
    assert raw_schema("github", "acme") == "raw_github__acme"
    assert raw_schema("claude_code", "globex_eu") == "raw_claude_code__globex_eu"


@pytest.mark.parametrize("slug", ["Acme", "acme-eng", 'x"; drop schema control; --', "a"])
def test_a_slug_that_is_not_identifier_safe_is_refused(slug: str) -> None:
    with pytest.raises(ValueError, match="not a valid slug"):
        raw_schema("github", slug)
