"""Field discovery: schema first, name second, one field per canonical name, admins win."""

from __future__ import annotations

import pytest

from pulse.fieldmap import CANONICAL_NAMES, FieldCandidate, as_json, field_ids, override, propose


def jira_like_fields() -> list[FieldCandidate]:
    return [
        # A decoy first: a text field named like story points must lose to the typed one.
        FieldCandidate("customfield_10001", "Story Points (old)", "string"),
        FieldCandidate(
            "customfield_10016", "Story point estimate", "number", "com.pyxis.greenhopper.jira:jsw-story-points"
        ),
        FieldCandidate("customfield_10020", "Sprint", "sprint", "com.pyxis.greenhopper.jira:gh-sprint"),
        FieldCandidate("customfield_10021", "Sprint Goal", "text"),
        FieldCandidate("customfield_10100", "Acceptance Criteria Quality", "option"),
        FieldCandidate("customfield_10101", "Unit Test Task", "boolean"),
        FieldCandidate("customfield_10102", "Unit Testing Status", "option"),
        FieldCandidate("customfield_10103", "Code Coverage %", "number"),
        FieldCandidate("customfield_10104", "Pull Request Links", "text"),
        FieldCandidate("customfield_10105", "CI Evidence", "url"),
        FieldCandidate("customfield_10106", "Reviewer DMT Sign-off", "option"),
        FieldCandidate("customfield_10107", "DMT Exception", "option"),
        FieldCandidate("customfield_10108", "DMT Exception Reason", "text"),
        FieldCandidate("customfield_10109", "DMT Exception Approver", "user"),
        FieldCandidate("customfield_10110", "DMT Exception Expires", "date"),
    ]


def test_every_canonical_field_is_found_by_schema_then_name() -> None:
    proposal = propose(jira_like_fields())

    assert proposal.missing == []
    ids = {name: mapping.field_id for name, mapping in proposal.mappings.items()}
    assert ids == {
        "story_points": "customfield_10016",
        "sprint": "customfield_10020",
        "dmt_ac_quality": "customfield_10100",
        "dmt_unit_test_task": "customfield_10101",
        "dmt_unit_test_status": "customfield_10102",
        "dmt_coverage_pct": "customfield_10103",
        "dmt_pr_links": "customfield_10104",
        "dmt_ci_evidence": "customfield_10105",
        "dmt_reviewer_signoff": "customfield_10106",
        "dmt_exception": "customfield_10107",
        "dmt_exception_reason": "customfield_10108",
        "dmt_exception_approver": "customfield_10109",
        "dmt_exception_expires": "customfield_10110",
    }
    assert set(ids) == set(CANONICAL_NAMES)
    assert proposal.mappings["story_points"].method == "schema"
    assert proposal.mappings["dmt_coverage_pct"].method == "name"


def test_a_field_of_the_wrong_type_is_not_taken_by_its_name() -> None:
    proposal = propose([FieldCandidate("f1", "Story Points", "string"), FieldCandidate("f2", "Coverage", "text")])

    assert "story_points" in proposal.missing
    assert "dmt_coverage_pct" in proposal.missing


def test_azure_reference_names_identify_points_and_iteration() -> None:
    proposal = propose(
        [
            FieldCandidate("Microsoft.VSTS.Scheduling.Effort", "Effort", "number"),
            FieldCandidate(
                "Microsoft.VSTS.Scheduling.StoryPoints",
                "Story Points",
                "number",
                "Microsoft.VSTS.Scheduling.StoryPoints",
            ),
            FieldCandidate("System.IterationPath", "Iteration Path", "string", "System.IterationPath"),
        ]
    )

    assert proposal.mappings["story_points"].field_id == "Microsoft.VSTS.Scheduling.StoryPoints"
    assert proposal.mappings["sprint"].field_id == "System.IterationPath"


def test_an_admin_override_survives_rediscovery_and_takes_its_field_out_of_the_pool() -> None:
    stored = as_json(propose(jira_like_fields()))
    stored = override(stored, "dmt_coverage_pct", "customfield_20000", "Line coverage")

    again = propose(jira_like_fields(), existing=stored)

    assert again.mappings["dmt_coverage_pct"].field_id == "customfield_20000"
    assert again.mappings["dmt_coverage_pct"].method == "admin"
    assert field_ids(as_json(again))["dmt_coverage_pct"] == "customfield_20000"
    assert field_ids(as_json(again))["story_points"] == "customfield_10016"


def test_override_refuses_an_unknown_canonical_name() -> None:
    with pytest.raises(ValueError, match=r"unknown field 'points'.*story_points"):
        override({}, "points", "customfield_1")
