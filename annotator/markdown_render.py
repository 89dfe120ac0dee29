"""Markdown written by admins (guidelines) rendered to sanitised HTML.

The HTML is cleaned by nh3 (Ammonia) with a small allow-list: no scripts, no event handlers,
no style, and links limited to http(s) and mailto, so a guideline can never run code.
"""

from __future__ import annotations

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "kbd",
}


def render_markdown(text: str) -> SafeString:
    html = markdown.markdown(text or "", extensions=["tables", "fenced_code"])
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    # The one place the app marks HTML safe: admin-written Markdown after nh3 removed every
    # tag and attribute outside the allow-list above. Model output never goes through here.
    return mark_safe(cleaned)  # noqa: S308
