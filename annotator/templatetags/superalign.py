"""Template helpers shared by every page."""

from __future__ import annotations

from django import template
from django.urls import reverse

register = template.Library()


@register.inclusion_tag("annotator/_project_nav.html", takes_context=True)
def project_nav(context, access) -> dict:
    """The project's navigation: every feature's entries the member's role allows."""
    from annotator.routes import PROJECT_NAV

    request = context.get("request")
    current = request.path if request else ""
    links = []
    for label, url_name, minimum in PROJECT_NAV:
        if access.can(minimum):
            url = reverse(url_name, args=[access.project.slug])
            links.append({"label": label, "url": url, "active": current == url})
    return {"links": links, "project": access.project, "access": access}


@register.filter
def percent(value, digits: int = 0) -> str:
    """0.1234 -> '12%'; None -> '—'."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def signed(value, digits: int = 2) -> str:
    """0.1234 -> '+0.12'; -2 -> '-2.00'; None -> '—' (a difference, with its sign)."""
    if value is None or value == "":
        return "—"
    return f"{float(value):+.{int(digits)}f}"


@register.filter
def points(value, digits: int = 1) -> str:
    """A difference of two rates in percentage points: 0.032 -> '+3.2 pts'; None -> '—'."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:+.{int(digits)}f} pts"
