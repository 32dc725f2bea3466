"""The gateway's answers, told in the CLI's words."""

from __future__ import annotations

from megam_cli.client import ApiError
from megam_cli.errors import explain


def test_a_validation_error_names_the_field_and_its_rule() -> None:
    message, hint = explain(
        ApiError(
            400,
            "the body is not a valid node launch (short form)",
            "Expected `str` matching regex '^[a-z0-9]([a-z0-9-]{0,62})' - at `$.node_name`",
        )
    )
    assert message == "the node name is not valid"
    assert "lower-case letters" in hint and "regex" not in hint


def test_route_hints_become_commands() -> None:
    message, hint = explain(
        ApiError(404, "you have no predef cloud named aws", "create it with POST /v1/predefclouds")
    )
    assert message == "you have no cloud named aws"
    assert hint.startswith("add it with 'megam clouds add aws")


def test_an_unknown_message_keeps_its_detail_unless_it_is_written_for_http() -> None:
    assert explain(ApiError(503, "the store is unavailable", "disk full")) == (
        "the store is unavailable",
        "disk full",
    )
    assert explain(ApiError(404, "gone", "GET /v1/things lists them")) == ("gone", "")
