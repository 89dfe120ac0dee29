"""Learner versions: promote a candidate, roll back, and the learner list page."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotator.models import LearnerVersion, Role
from annotator.services.learners import (
    learner_promote,
    learner_register_candidate,
    learner_roll_back,
)
from annotator.services.snapshots import snapshot_create
from annotator.services.training import TrainingSettings, training_launch
from tests.factories import (
    active_learner,
    add_member,
    login_as,
    make_campaign,
    make_project,
)
from tests.training_factories import curate_many

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = make_project()
    curate_many(project, 3)
    return project


def candidate_of(project, **metrics) -> LearnerVersion:
    snapshot = snapshot_create(project=project, name="s", validation_fraction=0)
    run = training_launch(project=project, snapshot=snapshot,
                          settings=TrainingSettings(method="dpo", eval_budget=0))
    return learner_register_candidate(run=run, metrics=metrics)


def statuses(project) -> dict[str, str]:
    return dict(project.learner_versions.values_list("name", "status"))


def test_promote_retires_the_active_version_and_remembers_it(project):
    base = active_learner(project)
    candidate = candidate_of(project)
    admin = add_member(project, Role.ADMIN)

    learner_promote(version=candidate, user=admin)

    candidate.refresh_from_db()
    assert statuses(project) == {"base": "retired", candidate.name: "active"}
    assert candidate.previous_active == base
    assert candidate.promoted_by == admin and candidate.promoted_at is not None
    # Future campaigns attack the promoted learner.
    assert make_campaign(project).learner_version == candidate


def test_roll_back_returns_to_the_previous_version_and_further_back(project):
    first = candidate_of(project)
    learner_promote(version=first)
    second = candidate_of(project)
    learner_promote(version=second)

    assert learner_roll_back(project=project) == first
    assert statuses(project) == {"base": "retired", first.name: "active", second.name: "retired"}
    assert learner_roll_back(project=project).name == "base"
    with pytest.raises(ValidationError):
        learner_roll_back(project=project)  # the base model has nothing before it
    assert active_learner(project).name == "base"


def test_promoting_the_active_version_is_refused(project):
    with pytest.raises(ValidationError):
        learner_promote(version=active_learner(project))
    assert statuses(project) == {"base": "active"}


def test_registering_twice_keeps_one_candidate(project):
    version = candidate_of(project)
    again = learner_register_candidate(run=version.produced_by, metrics={})
    assert again == version
    assert project.learner_versions.count() == 2


# -- pages -------------------------------------------------------------------------------------

def test_the_list_shows_versions_with_held_out_figures(client, project):
    candidate = candidate_of(project, val_loss=0.5)
    candidate.metrics["held_out"] = {"asr": 0.25, "asr_lo": 0.1, "asr_hi": 0.4, "over_refusal": 0.0}
    candidate.save()
    login_as(client, project, Role.VIEWER)
    body = client.get(reverse("annotator:learner_list", args=[project.slug])).content.decode()
    assert candidate.name in body and "25.0%" in body and "[10%–40%]" in body
    assert ">Promote</button>" not in body  # viewers only look


def test_an_admin_promotes_and_rolls_back_in_the_browser(client, project):
    candidate = candidate_of(project)
    login_as(client, project, Role.ADMIN)

    response = client.post(reverse("annotator:learner_promote", args=[project.slug, candidate.pk]),
                           follow=True)
    assert response.status_code == 200
    assert "is now the active learner" in response.content.decode()
    assert active_learner(project) == candidate
    assert "Roll back to base" in response.content.decode()

    response = client.post(reverse("annotator:learner_roll_back", args=[project.slug]), follow=True)
    assert "base is the active learner again" in response.content.decode()
    assert active_learner(project).name == "base"


def test_promote_and_roll_back_require_admin_and_post(client, project):
    candidate = candidate_of(project)
    login_as(client, project, Role.EXPERT)
    promote = reverse("annotator:learner_promote", args=[project.slug, candidate.pk])
    roll_back = reverse("annotator:learner_roll_back", args=[project.slug])
    assert client.post(promote).status_code == 403
    assert client.post(roll_back).status_code == 403
    assert client.get(promote).status_code == 405
    assert client.get(roll_back).status_code == 405
    assert active_learner(project).name == "base"


def test_it_hides_other_projects(client, project):
    candidate = candidate_of(project)
    other = make_project()
    login_as(client, other, Role.ADMIN)
    assert client.get(reverse("annotator:learner_list", args=[project.slug])).status_code == 404
    assert client.post(reverse("annotator:learner_promote",
                               args=[other.slug, candidate.pk])).status_code == 404
    assert active_learner(project).name == "base"
