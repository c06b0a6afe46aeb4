"""Schemathesis fuzzing against ``/openapi.json``: no input makes the server answer 5xx, and every
client error is an RFC 7807 problem document. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from api_fixtures import heading_model, make_resources, make_store
from vesselwatch.settings import Settings

EXAMPLES_PER_OPERATION = 20


def _schema():
    """The app's schema, built at collection time (schemathesis parametrizes one test per operation)."""
    folder = Path(tempfile.mkdtemp(prefix="vesselwatch-fuzz-"))
    resources = make_resources(folder, heading_model=heading_model(folder))
    app = create_app(Settings(var_dir=folder / "var", api_key="fuzz-key-not-sent"), store=make_store(),
                     resources=resources)
    # The SSE stream never ends by design; it has its own tests (test_api_alerts.py).
    return schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/alerts/stream")


schema = _schema()


def problem_json_for_client_errors(ctx, response, case) -> None:
    """Every 4xx answer is ``application/problem+json`` with the status repeated in the body."""
    if 400 <= response.status_code < 500:
        content_type = response.headers.get("content-type", [""])
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json"), (response.status_code, content_type)
        assert response.json()["status"] == response.status_code


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case):
    case.call_and_validate(checks=[not_a_server_error, problem_json_for_client_errors])
