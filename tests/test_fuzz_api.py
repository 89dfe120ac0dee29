"""Property-based fuzzing of the whole REST API from its own OpenAPI schema (schemathesis).

Every operation gets generated requests (valid and invalid bodies, query strings, path values)
sent through the real WSGI application as a project admin with an API token; no answer may be a
server error. Path values point at real objects of the project half of the time, so the fuzzing
reaches past the 404s into the serializers and services. The example count per operation is
bounded (FUZZ_EXAMPLES, default 10) to keep the suite quick; raise it for a longer hunt.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from annotator.models import (
    DatasetSnapshot,
    Export,
    ItemState,
    LabelStudy,
    LearnerVersion,
    Role,
    TrainingRun,
)
from annotator.services.tokens import token_create
from annotator.wsgi import application
from tests.factories import (
    active_learner,
    add_member,
    make_campaign,
    make_discovered_risk,
    make_project,
    make_review_item,
)

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
SLUG = "fuzz"
# The path segment before "{pk}" names the model, as in the permission matrix.
SEGMENT_OBJECTS = {"campaigns": "campaign", "training-runs": "run", "snapshots": "snapshot",
                   "learners": "learner", "items": "item", "critiques": "critique",
                   "exports": "export", "studies": "study", "discoveries": "discovery",
                   "clusters": "risk"}


@pytest.fixture
def _keep_connection():
    """Keep the test's connection across the requests, as Django's test client does.

    schemathesis calls the WSGI application directly, so Django's request signals close the
    database connection after each request. Outside a test that is what should happen (and
    with PostgreSQL's pool, CONN_MAX_AGE=0, it does every time), but here the connection holds
    the test's transaction, and the next request would have to open a new one inside it.
    """
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(db, _keep_connection) -> dict:
    project = make_project("Fuzz", slug=SLUG)
    admin = add_member(project, Role.ADMIN)
    campaign = make_campaign(project)
    item = make_review_item(project, campaign=campaign)
    make_review_item(project, state=ItemState.DISAGREEMENT)
    snapshot = DatasetSnapshot.objects.create(project=project, name="s", content_hash="0" * 64)
    learner = LearnerVersion.objects.create(project=project, name="candidate",
                                            adapter_path=f"adapters/{SLUG}/x")
    run = TrainingRun.objects.create(project=project, snapshot=snapshot,
                                     base_version=active_learner(project))
    export = Export.objects.create(project=project, format=Export.Format.CSV)
    study = LabelStudy.objects.create(project=project, snapshot=snapshot, name="study",
                                      base_version=active_learner(project))
    risk = make_discovered_risk(project, [item])  # in a finished discovery run
    objects = {"campaign": campaign.pk, "item": item.pk, "critique": item.critique_id,
               "snapshot": snapshot.pk, "learner": learner.pk, "run": run.pk,
               "export": export.pk, "study": study.pk, "discovery": risk.discovery_id,
               "risk": risk.pk}
    return {"key": token_create(user=admin, name="fuzz").key, "objects": objects}


def _aim(case, world: dict) -> None:
    """Point the path at our project, and at one of its objects on even draws."""
    params = case.path_parameters or {}
    if "slug" in params:
        params["slug"] = SLUG
    if "pk" in params:
        segment = case.operation.path.split("{pk}")[0].rstrip("/").split("/")[-1]
        model = SEGMENT_OBJECTS.get(segment)
        if model and isinstance(params["pk"], int) and params["pk"] % 2 == 0:
            params["pk"] = world["objects"][model]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_server_fail(case, fuzz_world) -> None:
    _aim(case, fuzz_world)
    response = case.call(headers={"Authorization": f"Bearer {fuzz_world['key']}"})
    case.validate_response(response, checks=[not_a_server_error])
