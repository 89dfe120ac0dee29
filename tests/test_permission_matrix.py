"""Every URL of the app × every kind of user × every method it accepts, against one table.

The URLs come from walking Django's resolver, not from a list, so a new URL without an entry in
ACCESS fails `test_every_url_is_classified` until someone decides who may use it. Each URL's
arguments are built from fixtures: the project's slug, and for `<int:pk>` an object of the model
that the path segment before it names (campaigns/<pk> → Campaign, ...), in that project.
The same URL with an object of ANOTHER project must answer 404 to everyone (the pk is looked up
inside the project named by the slug), and nothing of the other project may appear in any
answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from annotator.models import (
    ApiToken,
    Campaign,
    DatasetSnapshot,
    Export,
    ItemState,
    JobStatus,
    LabelStudy,
    LearnerVersion,
    ModelEndpoint,
    ReliabilityRun,
    ReviewItem,
    RiskDiscovery,
    Role,
    TrainingRun,
)
from annotator.services.tokens import token_create
from tests.factories import (
    active_learner,
    add_member,
    make_campaign,
    make_discovered_risk,
    make_project,
    make_review_item,
    make_user,
)

# Who may use a URL with a given method (the minimum), from nobody-logged-in up to staff.
PUBLIC = "public"  # anyone, logged in or not
LOGIN = "login"  # any logged-in user; not about one project
VIEWER, EXPERT, ADMIN = Role.VIEWER.value, Role.EXPERT.value, Role.ADMIN.value
STAFF = "staff"  # Django staff (superusers): system pages
RANK = {VIEWER: 0, EXPERT: 1, ADMIN: 2}

# URL name → {method: minimum}. Methods left out must answer 405 to logged-in users.
ACCESS: dict[str, dict[str, str]] = {
    # auth and system
    "login": {"GET": PUBLIC, "POST": PUBLIC},
    "logout": {"POST": PUBLIC},
    "annotator:home": {"GET": PUBLIC},
    "annotator:health": {"GET": STAFF, "POST": STAFF},
    "annotator:project_list": {"GET": LOGIN},
    # project pages
    "annotator:project_detail": {"GET": VIEWER},
    "annotator:project_guidelines": {"GET": VIEWER},
    "annotator:project_settings": {"POST": ADMIN},
    "annotator:critic_retrain": {"POST": ADMIN},
    # review
    "annotator:review_queue": {"GET": EXPERT},
    "annotator:review_decide": {"POST": EXPERT},
    "annotator:review_undo": {"POST": EXPERT},
    "annotator:review_stats": {"GET": VIEWER},
    "annotator:adjudication_list": {"GET": ADMIN},
    "annotator:adjudication_detail": {"GET": ADMIN},
    "annotator:adjudication_settle": {"POST": ADMIN},
    "annotator:adjudication_gold": {"POST": ADMIN},
    # oversight
    "annotator:oversight": {"GET": ADMIN},
    "annotator:oversight_refresh": {"POST": ADMIN},
    "annotator:oversight_settings": {"POST": ADMIN},
    # campaigns
    "annotator:campaign_list": {"GET": VIEWER},
    "annotator:campaign_launch": {"GET": ADMIN, "POST": ADMIN},
    "annotator:campaign_detail": {"GET": VIEWER},
    "annotator:campaign_cancel": {"POST": ADMIN},
    "annotator:campaign_resume": {"POST": ADMIN},
    # training, snapshots, learners
    "annotator:training_list": {"GET": VIEWER},
    "annotator:training_new": {"GET": ADMIN, "POST": ADMIN},
    "annotator:training_detail": {"GET": VIEWER},
    "annotator:training_cancel": {"POST": ADMIN},
    "annotator:training_resume": {"POST": ADMIN},
    "annotator:training_log": {"GET": VIEWER},
    "annotator:training_compare": {"GET": VIEWER},
    "annotator:snapshot_new": {"GET": ADMIN, "POST": ADMIN},
    "annotator:snapshot_preview": {"GET": ADMIN},
    "annotator:snapshot_detail": {"GET": VIEWER},
    "annotator:learner_list": {"GET": VIEWER},
    "annotator:learner_promote": {"POST": ADMIN},
    "annotator:learner_roll_back": {"POST": ADMIN},
    "annotator:study_list": {"GET": VIEWER},
    "annotator:study_new": {"GET": ADMIN, "POST": ADMIN},
    "annotator:study_detail": {"GET": VIEWER},
    "annotator:study_cancel": {"POST": ADMIN},
    "annotator:study_resume": {"POST": ADMIN},
    # risk discovery
    "annotator:risks_home": {"GET": VIEWER},
    "annotator:risk_discovery_run": {"POST": ADMIN},
    "annotator:risk_discovery_cancel": {"POST": ADMIN},
    "annotator:risk_discovery_resume": {"POST": ADMIN},
    "annotator:risk_adopt": {"POST": ADMIN},
    "annotator:risk_dismiss": {"POST": ADMIN},
    # data: exports, imports, my API tokens
    "annotator:data_home": {"GET": ADMIN},
    "annotator:export_new": {"POST": ADMIN},
    "annotator:export_row": {"GET": ADMIN},
    "annotator:export_cancel": {"POST": ADMIN},
    "annotator:export_download": {"GET": ADMIN},
    "annotator:data_import": {"GET": ADMIN, "POST": ADMIN},
    "annotator:tokens": {"GET": LOGIN, "POST": LOGIN},
    "annotator:token_revoke": {"POST": LOGIN},
    # REST API
    "api:schema": {"GET": PUBLIC},
    "api:docs": {"GET": PUBLIC},
    "api:project_list": {"GET": LOGIN},
    "api:project_detail": {"GET": VIEWER, "PATCH": ADMIN},
    "api:critic_detail": {"GET": VIEWER},
    "api:critic_retrain": {"POST": ADMIN},
    "api:review_next": {"GET": EXPERT},
    "api:review_decide": {"POST": EXPERT},
    "api:review_undo": {"POST": EXPERT},
    "api:critique_list": {"GET": VIEWER},
    "api:critique_detail": {"GET": VIEWER},
    "api:review_list": {"GET": VIEWER},
    "api:review_item_gold": {"POST": ADMIN},
    "api:oversight": {"GET": ADMIN},
    "api:oversight_refresh": {"POST": ADMIN},
    "api:oversight_run_status": {"GET": ADMIN},
    "api:campaign_list": {"GET": VIEWER, "POST": ADMIN},
    "api:campaign_status": {"GET": VIEWER},
    "api:campaign_cancel": {"POST": ADMIN},
    "api:campaign_resume": {"POST": ADMIN},
    "api:snapshot_list": {"GET": VIEWER, "POST": ADMIN},
    "api:snapshot_preview": {"POST": ADMIN},
    "api:snapshot_detail": {"GET": VIEWER},
    "api:training_run_list": {"GET": VIEWER, "POST": ADMIN},
    "api:training_run_status": {"GET": VIEWER},
    "api:training_run_cancel": {"POST": ADMIN},
    "api:training_run_resume": {"POST": ADMIN},
    "api:learner_list": {"GET": VIEWER},
    "api:learner_promote": {"POST": ADMIN},
    "api:learner_roll_back": {"POST": ADMIN},
    "api:study_list": {"GET": VIEWER, "POST": ADMIN},
    "api:study_status": {"GET": VIEWER},
    "api:study_cancel": {"POST": ADMIN},
    "api:study_resume": {"POST": ADMIN},
    "api:risk_discovery_list": {"GET": VIEWER, "POST": ADMIN},
    "api:risk_discovery_status": {"GET": VIEWER},
    "api:risk_discovery_cancel": {"POST": ADMIN},
    "api:risk_discovery_resume": {"POST": ADMIN},
    "api:risk_cluster_list": {"GET": VIEWER},
    "api:risk_adopt": {"POST": ADMIN},
    "api:risk_dismiss": {"POST": ADMIN},
    "api:risk_category_list": {"GET": VIEWER},
    "api:export_list": {"GET": ADMIN, "POST": ADMIN},
    "api:export_detail": {"GET": ADMIN},
    "api:export_cancel": {"POST": ADMIN},
    "api:export_download": {"GET": ADMIN},
    "api:import_create": {"POST": ADMIN},
    "api:token_list": {"GET": LOGIN, "POST": LOGIN},
    "api:token_revoke": {"DELETE": LOGIN},
    "api:endpoint_list": {"GET": ADMIN},
    "api:endpoint_detail": {"GET": ADMIN, "PUT": ADMIN, "PATCH": ADMIN, "DELETE": ADMIN},
}

# The path segment before `<int:pk>` names the model of the object the URL is about.
SEGMENT_MODELS = {
    "campaigns": "campaign", "training": "run", "training-runs": "run", "snapshots": "snapshot",
    "learners": "learner", "items": "item", "adjudicate": "item", "critiques": "critique",
    "exports": "export", "tokens": "token", "studies": "study",
    "runs": "reliability_run", "discoveries": "discovery", "risks": "risk", "clusters": "risk",
}
# Objects that belong to a user rather than a project: each user's own one is used.
OWN_MODELS = {"token"}

USERS = ("anonymous", "outsider", "viewer", "expert", "admin", "superuser")
# Text put into every object of the other project; it must never appear in an answer about ours.
MARKER = "ZZOTHERPROJECTZZ"


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str  # the full path pattern, e.g. "api/projects/<slug:slug>/campaigns/<int:pk>/"
    methods: tuple[str, ...]  # the methods to try: GET, POST and what an API view declares

    @property
    def is_api(self) -> bool:
        return self.name.startswith("api:")

    @property
    def kwargs(self) -> tuple[str, ...]:
        return tuple(part.split(":")[-1].rstrip(">").split(">")[0]
                     for part in self.pattern.split("<")[1:])

    @property
    def model(self) -> str | None:
        if "pk" not in self.kwargs:
            return None
        before = self.pattern.split("<int:pk>")[0].rstrip("/").split("/")[-1]
        return SEGMENT_MODELS.get(before, f"<unknown segment {before!r}>")


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            yield from _walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = ":".join(filter(None, [namespace, entry.name])) if entry.name else None
            yield name, prefix + str(entry.pattern), entry.callback


def app_routes() -> list[Route]:
    """Every named URL of the app (admin and static left out), with the methods to try."""
    routes = {}
    for name, pattern, callback in _walk(get_resolver()):
        if not name or name.startswith("admin:") or pattern.startswith(("admin/", "static/")):
            continue
        methods = ["GET", "POST"]
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        if view_class is not None and hasattr(view_class, "permission_classes"):
            # A DRF view: also every method it implements (PUT, PATCH, DELETE).
            methods += [m.upper() for m in ("put", "patch", "delete") if hasattr(view_class, m)]
        routes[name] = Route(name=name, pattern=pattern, methods=tuple(methods))
    return sorted(routes.values(), key=lambda route: route.name)


ROUTES = app_routes()


def test_every_url_is_classified() -> None:
    """New URLs must be added to ACCESS (and removed URLs taken out of it)."""
    names = {route.name for route in ROUTES}
    assert sorted(names - set(ACCESS)) == [], "URLs without an entry in ACCESS"
    assert sorted(set(ACCESS) - names) == [], "ACCESS entries for URLs that no longer exist"


def test_every_declared_method_is_tried() -> None:
    for route in ROUTES:
        missing = set(ACCESS.get(route.name, {})) - set(route.methods)
        assert not missing, f"{route.name}: {missing} in ACCESS but never requested"


def test_every_object_url_has_a_known_model() -> None:
    unknown = [route.name for route in ROUTES if route.model and route.model.startswith("<")]
    assert unknown == [], "add the path segment to SEGMENT_MODELS"


# -- the world: our project, another project, one user of each kind ------------------------------


def _objects(project, *, marker: str = "") -> dict:
    """One object of every model a URL can be about, in `project`."""
    campaign = make_campaign(project, name=f"Campaign {marker}".strip())
    item = make_review_item(project, query=f"How do I pick a lock? {marker}", campaign=campaign,
                            state=ItemState.DISAGREEMENT)
    snapshot = DatasetSnapshot.objects.create(project=project, name=f"Snapshot {marker}".strip(),
                                              content_hash="0" * 64)
    learner = LearnerVersion.objects.create(project=project, name=f"candidate {marker}".strip(),
                                            adapter_path=f"adapters/{project.slug}/x")
    run = TrainingRun.objects.create(project=project, snapshot=snapshot,
                                     base_version=active_learner(project), log=marker)
    export = Export.objects.create(project=project, format=Export.Format.CSV,
                                   error=marker)
    # A judge endpoint, so endpoints/<role>/ has something to read (its model name carries
    # the marker: the other project's must never show).
    ModelEndpoint.objects.create(project=project, role="critic_judge", kind="openai",
                                 model=f"judge{marker}", base_url="http://judge.invalid/v1")
    study = LabelStudy.objects.create(project=project, snapshot=snapshot, name=marker,
                                      base_version=active_learner(project), error=marker)
    reliability = ReliabilityRun.objects.create(project=project, error=marker)
    # A finished discovery run with one cluster of the item's answer, named with the marker.
    discovery = RiskDiscovery.objects.create(project=project, status=JobStatus.SUCCEEDED,
                                             finished_at=timezone.now(), error=marker)
    risk = make_discovered_risk(project, [item], name=f"risk {marker}".strip(),
                                discovery=discovery)
    return {"campaign": campaign.pk, "item": item.pk, "critique": item.critique_id,
            "snapshot": snapshot.pk, "learner": learner.pk, "run": run.pk, "export": export.pk,
            "study": study.pk, "reliability_run": reliability.pk,
            "discovery": discovery.pk, "risk": risk.pk}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> dict:
    """Built once for the module (committed); each test's own writes are rolled back."""
    with django_db_blocker.unblock():
        built = _build_world()
        yield built
        _destroy_world(built)


def _build_world() -> dict:
    ours = make_project("Ours")
    theirs = make_project(f"Theirs {MARKER}", description=MARKER, guidelines=MARKER)
    users = {
        "anonymous": None,
        "outsider": add_member(theirs, Role.ADMIN),  # admin elsewhere, nothing here
        "viewer": add_member(ours, Role.VIEWER),
        "expert": add_member(ours, Role.EXPERT),
        "admin": add_member(ours, Role.ADMIN),
        "superuser": make_user(is_superuser=True, is_staff=True),
    }
    tokens = {kind: token_create(user=user, name="mine").token.pk
              for kind, user in users.items() if user is not None}
    stranger = make_user()
    sessions = {}
    for kind, user in users.items():
        if user is not None:
            client = Client()
            client.force_login(user)
            sessions[kind] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {"ours": ours, "theirs": theirs, "users": users, "tokens": tokens,
            "sessions": sessions, "stranger": stranger,
            "our_objects": _objects(ours), "their_objects": _objects(theirs, marker=MARKER),
            "stranger_token": token_create(user=stranger, name="not yours").token.pk}


def _destroy_world(world: dict) -> None:
    from django.contrib.sessions.models import Session

    Session.objects.all().delete()
    for project in (world["ours"], world["theirs"]):
        # Training runs, studies and campaigns protect their learner versions: they go first.
        TrainingRun.objects.filter(project=project).delete()
        LabelStudy.objects.filter(project=project).delete()
        Campaign.objects.filter(project=project).delete()
        project.delete()
    for user in [*world["users"].values(), world["stranger"]]:
        if user is not None:
            user.delete()


def _url(route: Route, *, slug: str, pk: int | None) -> str:
    kwargs = {}
    for name in route.kwargs:
        if name == "slug":
            kwargs["slug"] = slug
        elif name == "pk":
            kwargs["pk"] = pk
        elif name == "role":
            kwargs["role"] = "critic_judge"
        else:
            raise AssertionError(f"{route.name}: no fixture for URL argument {name!r}")
    return reverse(route.name, kwargs=kwargs)


def _request(client: Client, method: str, url: str, is_api: bool):
    if method == "GET":
        return client.get(url)
    if is_api:
        return client.generic(method, url, data="{}", content_type="application/json")
    return client.generic(method, url, data="", content_type="application/x-www-form-urlencoded")


def _to_login(response) -> bool:
    return response.status_code == 302 and "/login/" in response.get("Location", "")


def _is_ok(response, *, public: bool) -> bool:
    """Let through: no auth error, no 404/405, no server error, no bounce to a login page."""
    if response.status_code >= 500 or response.status_code in (401, 403, 404, 405):
        return False
    return public or not _to_login(response)


def _expected_problem(route: Route, method: str, user: str, response) -> str | None:
    """None when the answer is right for this user; otherwise what was expected."""
    status = response.status_code
    rule = ACCESS[route.name].get(method)
    if rule is None:  # a method the URL does not accept
        if user == "anonymous":
            return None if status in (302, 401, 403, 405) else "405 (or a login demand)"
        return None if status == 405 else "405"
    if rule == PUBLIC:
        return None if _is_ok(response, public=True) else "success"
    if user == "anonymous":
        if route.is_api:
            return None if status == 401 else "401"
        return None if _to_login(response) else "302 to the login page"
    if rule == STAFF:
        if user == "superuser":
            return None if _is_ok(response, public=False) else "success"
        return None if status in (302, 403) else "302 to the admin login or 403"
    if rule == LOGIN:
        return None if _is_ok(response, public=False) else "success"
    if user == "outsider":
        return None if status == 404 else "404"
    if user != "superuser" and RANK[user] < RANK[rule]:
        return None if status == 403 else "403"
    return None if _is_ok(response, public=False) else "success"


def _shows_marker(response) -> bool:
    return not response.streaming and MARKER.encode() in response.content


def _client_for(world: dict, user: str) -> Client:
    """A fresh client carrying the user's session (a logout in one test cannot leak)."""
    client = Client(raise_request_exception=False)
    if user in world["sessions"]:
        client.cookies[settings.SESSION_COOKIE_NAME] = world["sessions"][user]
    return client


def _pk_for(route: Route, world: dict, user: str, *, theirs: bool) -> int | None:
    if route.model is None:
        return None
    if route.model in OWN_MODELS:
        if theirs or user == "anonymous":
            return world["stranger_token"]
        return world["tokens"][user]
    objects = world["their_objects"] if theirs else world["our_objects"]
    return objects[route.model]


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_access(route: Route, world: dict, db) -> None:
    """Each kind of user gets exactly what ACCESS says, and never sees the other project."""
    if route.name not in ACCESS:
        pytest.fail(f"{route.name} is not classified in ACCESS")
    problems = []
    rules = set(ACCESS[route.name].values())
    # A public URL (the schema, the login page) answers everyone alike: two kinds of user do.
    users = ("anonymous", "viewer") if rules == {PUBLIC} else USERS
    for user in users:  # least to most rights: the admins' writes come last
        client = _client_for(world, user)
        for method in route.methods:
            if method not in ACCESS[route.name] and user not in ("anonymous", "admin"):
                continue  # a 405 does not depend on who asks; two kinds of user suffice
            url = _url(route, slug=world["ours"].slug, pk=_pk_for(route, world, user, theirs=False))
            response = _request(client, method, url, route.is_api)
            expected = _expected_problem(route, method, user, response)
            if expected:
                problems.append(f"{method} {url} as {user}: {response.status_code}, expected {expected}")
            # Outside any project (the project list), the outsider and superusers rightly see the
            # other project; inside ours nobody may.
            sees_all = user in ("outsider", "superuser") and "slug" not in route.kwargs
            if _shows_marker(response) and not sees_all:
                problems.append(f"{method} {url} as {user}: shows the other project")
    assert problems == []


@pytest.mark.parametrize("route", [r for r in ROUTES if r.model], ids=lambda route: route.name)
def test_objects_of_another_project_are_404(route: Route, world: dict, db) -> None:
    """Our slug with their object's pk: 404 for every member (and superusers) of ours; their
    slug: 404 for our members (outsiders there); superusers may see it through its own slug."""
    problems = []
    # Members below a URL's role are refused (403) before any object is looked up, which
    # test_access covers; here the users who get past the role check.
    for user in ("admin", "superuser"):
        client = _client_for(world, user)
        pk = _pk_for(route, world, user, theirs=True)
        for method in ACCESS[route.name]:
            mixed = _url(route, slug=world["ours"].slug, pk=pk)
            response = _request(client, method, mixed, route.is_api)
            if response.status_code != 404:
                problems.append(f"{method} {mixed} as {user}: {response.status_code}, expected 404")
            if _shows_marker(response):
                problems.append(f"{method} {mixed} as {user}: shows the other project")
            if "slug" in route.kwargs and user != "superuser":
                own = _url(route, slug=world["theirs"].slug, pk=pk)
                response = _request(client, method, own, route.is_api)
                if response.status_code != 404 or _shows_marker(response):
                    problems.append(f"{method} {own} as {user}: {response.status_code}, "
                                    "expected 404")
    assert problems == []


def test_objects_of_the_other_project_are_really_there(world: dict, db) -> None:
    """Guards the test itself: the 404s above must come from scoping, not from missing rows."""
    theirs = world["their_objects"]
    assert ReviewItem.objects.filter(pk=theirs["item"], project=world["theirs"]).exists()
    assert ApiToken.objects.filter(pk=world["stranger_token"]).exists()
    client = _client_for(world, "superuser")
    url = reverse("annotator:campaign_detail", args=[world["theirs"].slug, theirs["campaign"]])
    assert client.get(url).status_code == 200
