"""Short names for clusters: a template from the keywords, or a model's words that pass a check.

Model output is untrusted and a small model is often wrong, so a model's name is kept only when
it is short, plain, not a refusal or a meta-comment, not a name already taken, and shares a word
stem with the cluster's keywords (so it is about this cluster). Anything else falls back to the
template, which is always available and needs no model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

# Any generate-like callable: chat prompts (lists of {"role", "content"} messages) in, one text
# out per prompt. `learner_generate(learner)` wraps alignment_core.learner.Learner; an
# OpenAI-compatible client fits behind the same signature.
Generate = Callable[[list[list[dict]]], list[str]]

MAX_WORDS = 6
MAX_CHARS = 48
STEM = 5  # letters two words must share at the start to count as the same stem
_ALLOWED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 &/,'-]*$")
_LABEL = re.compile(r"^(?:name|title|category|answer)\s*:\s*", re.IGNORECASE)
_BANNED = re.compile(r"\b(?:sorry|cannot|can't|unable|apologi[sz]e|assistant|ai|i|me|my|you|"
                     r"request|requests|cluster|group|name|keywords?)\b", re.IGNORECASE)
SYSTEM = "You name groups of harmful requests for an AI safety team. Reply with the name only."


def template_name(keywords: Sequence[str]) -> str:
    """The fallback: the top three keywords, e.g. "ivory / rhino / smuggle"."""
    return " / ".join(keywords[:3]) if keywords else "unnamed"


def name_prompt(keywords: Sequence[str], examples: Sequence[str]) -> list[dict]:
    shown = "\n".join(f"- {text[:200]}" for text in examples[:4])
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": (
                f"Requests:\n{shown}\nKeywords: {', '.join(keywords[:8])}\n"
                "In two to five words, name the kind of harm these requests have in common.")}]


def _stems(words: Sequence[str]) -> set[str]:
    return {word.lower()[:STEM] for word in words if len(word) >= 3}


def accept_name(text: str, keywords: Sequence[str], taken: Sequence[str] = ()) -> str | None:
    """The model's name cleaned up, or None when it fails the sanity check."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    name = _LABEL.sub("", lines[0].strip()).strip(" \"'`*.#:;!-")
    words = name.split()
    if not 1 <= len(words) <= MAX_WORDS or len(name) > MAX_CHARS:
        return None
    if not _ALLOWED.match(name) or _BANNED.search(name):
        return None
    if not _stems(re.findall(r"[A-Za-z]+", name)) & _stems(keywords):
        return None
    normalised = {t.lower().replace("_", " ").strip() for t in taken}
    if name.lower() in normalised:
        return None
    return name


def name_clusters(keywords: Sequence[Sequence[str]], examples: Sequence[Sequence[str]],
                  generate: Generate | None = None,
                  taken: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(name, "model" or "template") per cluster; the model runs once, batched, if given.

    `taken` holds names the result must not reuse (known categories); names given here are
    added to it as they are handed out, so two clusters never share a model's name.
    """
    templates = [template_name(words) for words in keywords]
    if generate is None or not keywords:
        return [(name, "template") for name in templates]
    drafts = generate([name_prompt(words, texts) for words, texts in zip(keywords, examples)])
    used = list(taken)
    names = []
    for words, draft, fallback in zip(keywords, drafts, templates):
        accepted = accept_name(draft or "", words, used)
        names.append((accepted, "model") if accepted else (fallback, "template"))
        used.append(names[-1][0])
    return names


def learner_generate(learner: Any, max_new_tokens: int = 16) -> Generate:
    """A Generate for alignment_core.learner.Learner (or anything with its `generate`): greedy,
    so the names are the same on every run."""
    from alignment_core.learner import GenerationConfig

    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False)

    def generate(prompts: list[list[dict]]) -> list[str]:
        return learner.generate(prompts, config)

    return generate
