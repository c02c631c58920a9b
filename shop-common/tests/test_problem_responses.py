"""`problem_responses` describes a route's problem statuses for OpenAPI."""

from __future__ import annotations

from shop_common.problems import PROBLEM_CONTENT_TYPE, problem_responses

PROBLEM = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_each_status_is_a_problem_described_by_its_phrase() -> None:
    assert problem_responses(404, 409) == {
        404: {"description": "Not Found", "content": PROBLEM},
        409: {"description": "Conflict", "content": PROBLEM},
    }


def test_a_reason_replaces_the_phrase_and_adds_its_status() -> None:
    responses = problem_responses(400, why={400: "Bad JSON.", 412: "Stale ETag."})
    assert list(responses) == [400, 412]
    assert responses[400]["description"] == "Bad JSON."
    assert responses[412] == {"description": "Stale ETag.", "content": PROBLEM}
