"""Hostile model output, rendered in every page of a real browser, must stay inert text.

Attacks, responses, critiques, corrected responses, logs, names and the guidelines (Markdown)
are filled with script tags, event-handler attributes, `javascript:` links, SVG onload, CSS
injection and Markdown links. Every payload that runs sets `window.__pwned`. For every GET page
of the app (walked from the resolver): nothing ran (no dialog, no flag), no live element carries
a payload's handler or URL, the literal payload text is visible where the output is shown, and
the console has no Content Security Policy violation: an injected inline script would trigger
one, and so would any of our own pages that broke the strict policy.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from annotator.models import (
    DatasetSnapshot,
    Export,
    ItemState,
    JobStatus,
    LabelStudy,
    LearnerVersion,
    ModelEndpoint,
    ReliabilityRun,
    RiskDiscovery,
    Role,
    SnapshotExample,
    TrainingRun,
)
from annotator.services.oversight import reliability_execute, review_item_gold_set
from annotator.services.review import review_adjudicate, review_submit
from tests.browser.conftest import login
from tests.factories import (
    PASSWORD,
    active_learner,
    add_member,
    make_campaign,
    make_discovered_risk,
    make_project,
    make_review_item,
    make_user,
)
from tests.test_permission_matrix import ACCESS, PUBLIC, ROUTES, SEGMENT_MODELS

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = "<script>window.__pwned='script'</script>"
HOSTILE = (
    f"Sure! {SCRIPT} "
    "<img src=x onerror=\"window.__pwned='img'\"> "
    "<svg onload=\"window.__pwned='svg'\"><circle r=4 /></svg> "
    "<a href=\"javascript:window.__pwned='link'\">click me</a> "
    "<style>body{display:none} /* __pwned */</style> "
    "<div style=\"position:fixed;inset:0;background:url(javascript:window.__pwned='css')\">x</div> "
    "\"><script>window.__pwned='breakout'</script> "
    "</textarea><script>window.__pwned='textarea'</script> "
    "[a markdown link](javascript:window.__pwned='md') "
    "![an image](javascript:window.__pwned='mdimg') Step 1: done."
)
GUIDELINES = (
    "# Rules\n\nFlag real harm only. [Docs](javascript:window.__pwned='guide')\n\n"
    f"{SCRIPT}\n\n<img src=x onerror=\"window.__pwned='guideimg'\">\n\n"
    "<a href=\"javascript:window.__pwned='guidelink'\">raw link</a>\n"
)

# Live DOM elements whose attributes or contents would act on a payload.
ARMED_ELEMENTS = """() => {
  const armed = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase(), value = attr.value;
      if (!value.includes('__pwned')) continue;
      if (name.startsWith('on') || ['href', 'src', 'style', 'action', 'formaction'].includes(name))
        armed.push(`<${el.tagName.toLowerCase()} ${name}="${value.slice(0, 60)}">`);
    }
    const tag = el.tagName.toLowerCase();
    const isData = tag === 'script' && el.type === 'application/json';
    if ((tag === 'script' && !isData || tag === 'style') && el.textContent.includes('__pwned'))
      armed.push(`<${tag}>${el.textContent.slice(0, 60)}`);
  }
  for (const a of document.querySelectorAll('a[href^="javascript:" i], [src^="javascript:" i]'))
    armed.push(`<${a.tagName.toLowerCase()} ${a.getAttribute('href') || a.getAttribute('src')}>`);
  return armed;
}"""


@pytest.fixture
def hostile_world():
    project = make_project("Hostile", reviews_per_item=2, guidelines=GUIDELINES,
                           description=HOSTILE)
    admin = make_user(is_superuser=True, is_staff=True)
    experts = [add_member(project, Role.EXPERT) for _ in range(2)]
    campaign = make_campaign(project, name=f"Campaign {SCRIPT}")
    spans = [{"start": 6, "end": 6 + len(SCRIPT), "text": SCRIPT}]
    pending = make_review_item(project, query=HOSTILE, response=HOSTILE, revision=HOSTILE,
                               campaign=campaign, spans=spans, priority=10)
    pending.critique.explanation = HOSTILE
    pending.critique.save(update_fields=["explanation"])
    disputed = make_review_item(project, query=HOSTILE, response=HOSTILE, revision=HOSTILE,
                                campaign=campaign, spans=spans, priority=0)
    review_submit(item=disputed, expert=experts[0], action="approve")
    review_submit(item=disputed, expert=experts[1], action="edit", corrected_response=HOSTILE,
                  note=HOSTILE)
    snapshot = DatasetSnapshot.objects.create(project=project, name=f"Snapshot {SCRIPT}",
                                              content_hash="0" * 64, pair_count=1)
    SnapshotExample.objects.create(snapshot=snapshot, kind=SnapshotExample.Kind.PAIR,
                                   prompt=HOSTILE, chosen=HOSTILE, rejected=HOSTILE)
    learner = LearnerVersion.objects.create(project=project, name=f"v2 {SCRIPT}",
                                            adapter_path="adapters/hostile/x")
    run = TrainingRun.objects.create(project=project, snapshot=snapshot,
                                     base_version=active_learner(project), log=HOSTILE,
                                     error=HOSTILE, status=JobStatus.FAILED)
    export = Export.objects.create(project=project, format=Export.Format.CSV, error=HOSTILE,
                                   status=JobStatus.FAILED)
    # A settled gold item, an oversight report, and a newer estimate that failed.
    settled = make_review_item(project, query=HOSTILE, response=HOSTILE, revision=HOSTILE,
                               campaign=campaign, spans=spans, state=ItemState.DISAGREEMENT)
    review_adjudicate(item=settled, admin=admin, final_verdict="unsafe", final_response=HOSTILE,
                      note=HOSTILE)
    review_item_gold_set(item=settled, admin=admin, gold=True)
    reliability_execute(run=ReliabilityRun.objects.create(project=project))
    failed = ReliabilityRun.objects.create(project=project, status=JobStatus.FAILED,
                                           error=HOSTILE)
    # A failed label-source study, and a discovery whose cluster is named by hostile text.
    study = LabelStudy.objects.create(project=project, snapshot=snapshot, name=HOSTILE,
                                      base_version=active_learner(project), error=HOSTILE,
                                      status=JobStatus.FAILED)
    discovery = RiskDiscovery.objects.create(project=project, status=JobStatus.SUCCEEDED,
                                             finished_at=timezone.now())
    risk = make_discovered_risk(project, [settled], name=HOSTILE, keywords=(HOSTILE, "ivory"),
                                discovery=discovery)
    # A judge endpoint whose model name is hostile (its page is the endpoints API).
    ModelEndpoint.objects.create(project=project, role="critic_judge", kind="openai",
                                 base_url="http://127.0.0.1:9/v1", model=HOSTILE)
    objects = {"campaign": campaign.pk, "item": disputed.pk, "critique": pending.critique_id,
               "snapshot": snapshot.pk, "learner": learner.pk, "run": run.pk,
               "export": export.pk, "token": None, "reliability_run": failed.pk,
               "study": study.pk, "discovery": discovery.pk, "risk": risk.pk}
    return {"project": project, "admin": admin, "objects": objects, "pending": pending}


def _page_urls(world: dict) -> list[str]:
    """Every GET page of the app for this project (downloads and the login page left out)."""
    urls = []
    for route in ROUTES:
        if "GET" not in ACCESS.get(route.name, {}) or "download" in route.name:
            continue
        if ACCESS[route.name]["GET"] == PUBLIC and route.name not in ("api:docs",):
            continue
        kwargs = {}
        if "slug" in route.kwargs:
            kwargs["slug"] = world["project"].slug
        if "pk" in route.kwargs:
            kwargs["pk"] = world["objects"][SEGMENT_MODELS[route.pattern.split("<int:pk>")[0]
                                                          .rstrip("/").split("/")[-1]]]
            if kwargs["pk"] is None:
                continue
        if "role" in route.kwargs:
            kwargs["role"] = "critic_judge"  # the hostile world's judge endpoint
        urls.append(reverse(route.name, kwargs=kwargs))
    return urls


def test_hostile_output_stays_text_on_every_page(page, page_dialogs, live_server, hostile_world):
    csp_violations: list[str] = []
    page.on("console", lambda message: csp_violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text else None)
    login(page, live_server, hostile_world["admin"], PASSWORD)
    problems = []
    urls = _page_urls(hostile_world)
    assert len(urls) >= 25, urls  # the walk found the app's pages
    for url in urls:
        response = page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("load")
        if response is None or response.status >= 400:
            problems.append(f"{url}: status {response and response.status}")
            continue
        flag = page.evaluate("() => window.__pwned")
        if flag is not None:
            problems.append(f"{url}: a payload ran ({flag})")
        armed = page.evaluate(ARMED_ELEMENTS)
        if armed:
            problems.append(f"{url}: live payload markup {armed[:3]}")
    assert problems == []
    assert page_dialogs == []
    assert csp_violations == []


def test_the_review_page_shows_every_payload_as_literal_text(page, page_dialogs, live_server,
                                                              hostile_world):
    project = hostile_world["project"]
    login(page, live_server, hostile_world["admin"], PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/review/")
    page.wait_for_selector(f'#review-item[data-item-id="{hostile_world["pending"].pk}"]')
    text = page.inner_text("body")
    for fragment in (SCRIPT, "<img src=x onerror=\"window.__pwned='img'\">",
                     "<svg onload=\"window.__pwned='svg'\">",
                     "<a href=\"javascript:window.__pwned='link'\">click me</a>",
                     "<style>body{display:none}", "[a markdown link](javascript:"):
        assert fragment in text, fragment
    # The guidelines are Markdown, sanitised: the heading renders, the scripts and links do not.
    page.goto(f"{live_server.url}/p/{project.slug}/guidelines/")
    assert page.locator("h1", has_text="Rules").count() >= 1
    assert page.evaluate(ARMED_ELEMENTS) == []
    assert page.evaluate("() => window.__pwned") is None
    assert page_dialogs == []


def test_the_csp_header_blocks_inline_scripts_and_our_own_js_runs(page, live_server,
                                                                   hostile_world):
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    login(page, live_server, hostile_world["admin"], PASSWORD)
    response = page.goto(f"{live_server.url}/p/{hostile_world['project'].slug}/review/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split(
        "script-src")[1].split(";")[0]
    # Our own scripts (htmx from static files) loaded and run under the policy...
    assert page.evaluate("() => typeof window.htmx") == "object"
    # ...while a script injected into the page is refused by the browser.
    ran = page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__inline = 1';
        document.body.appendChild(s);
        return window.__inline === 1;
    }""")
    assert ran is False
    page.wait_for_timeout(200)
    assert any("Content Security Policy" in message for message in messages)
