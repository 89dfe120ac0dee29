"""The LM layer: a language model drafts the revision where a template cannot.

Only two verdicts need new text: an unsafe answer needs a safe alternative to offer instead,
and an over-refusal needs the helpful answer that was withheld. Explanations are grounded
templates (explain.py), and safe or refused items keep a template revision, so most items need
no model call at all. A 135M model is weak at this, so every output is post-processed
(repetition stripped, a harmful request's revision always opening with a brief refusal) and
falls back to the template when the model's text is unusable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from alignment_core.critic.base import Cancelled, Span
from alignment_core.critic.detectors import detect_refusal
from alignment_core.critic.features import relevance
from alignment_core.critic.rules import instruction_cues, lexicon_hits
from alignment_core.critic.templates import (
    REFUSAL_LINE,
    clean_text,
    safe_alternative,
    template_revision,
)

CONSTITUTION = (
    "You are a careful AI safety reviewer. Principles: an assistant must not help with anything "
    "that could cause serious harm; it should refuse briefly and offer a safe alternative; it must "
    "answer harmless requests helpfully, without needless refusals or lectures."
)
REVISION_ASK = ("Helping with this could cause harm, so the assistant will not do it. In one or "
                "two sentences, suggest a safe and legal alternative the user could pursue "
                "instead. Do not give any instructions for the request.")
MIN_USEFUL_CHARS = 20  # shorter model text is treated as a failure and replaced by the template
MIN_RELEVANCE = 0.1  # a "helpful answer" that shares no topic word with the request is nonsense


@dataclass
class WriteJob:
    """What the writer needs to know about one judged item."""

    query: str
    response: str
    verdict: str  # "unsafe" or "over_refusal"
    category: str
    spans: list[Span] = field(default_factory=list)


def revision_messages(job: WriteJob) -> list[dict]:
    """Step 2: ask for the better answer (a safe alternative, or the helpful answer it refused)."""
    if job.verdict == "over_refusal":
        return [{"role": "system", "content": "You are a helpful assistant. The user's request is "
                 "harmless: answer it directly, clearly and briefly."},
                {"role": "user", "content": job.query[:800]}]
    user = f"A user asked: \"{job.query[:600]}\"\n{REVISION_ASK}"
    return [{"role": "system", "content": CONSTITUTION}, {"role": "user", "content": user}]


_WORD_RE = re.compile(r"[a-z0-9']+")
ECHO_WORDS = 5  # this many words of the request in a row, repeated in a revision, is an echo


def echoes_request(text: str, query: str, n: int = ECHO_WORDS) -> bool:
    """Does `text` repeat `n` or more consecutive words of the request?

    Small models often answer "suggest an alternative" by quoting the request back ("The user
    asked: ..."); a revision that does would teach the learner to restate the harmful request.
    """
    words = _WORD_RE.findall(query.lower())
    grams = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    said = _WORD_RE.findall(text.lower())
    return any(tuple(said[i : i + n]) in grams for i in range(len(said) - n + 1))


def finish_revision(text: str, job: WriteJob) -> str:
    """Make the model's revision usable for its verdict, or fall back to the template."""
    text = clean_text(text)
    fallback = template_revision(job.verdict, job.category, job.query, job.response)
    if job.verdict == "over_refusal":
        # 1. A helpful answer must not refuse: drop refusing sentences, keep the rest; it must
        # also be about the request, not a loop or another subject.
        if detect_refusal(text).score > 0:
            sentences = re.split(r"(?<=[.!?])\s+", text)
            text = " ".join(s for s in sentences if detect_refusal(s).score == 0)
        usable = len(text) >= MIN_USEFUL_CHARS and relevance(job.query, text) >= MIN_RELEVANCE
        return text if usable else fallback
    if job.verdict != "unsafe":
        return fallback
    # 2. A harmful request's revision is a brief refusal plus the model's safe alternative, unless
    # the "alternative" itself carries harmful-instruction cues or is just another refusal.
    steps, _ = instruction_cues(text)
    # Any category's keywords count: a safe alternative should name no harmful thing at all.
    harmful = steps or lexicon_hits(text, "")
    only_refusal = detect_refusal(text).score > 0 and len(text) < 80
    # Quoting the request back, or the instructions it was given, is no alternative.
    echo = echoes_request(text, job.query) or echoes_request(text, REVISION_ASK)
    # clean_text kept the complete sentences; text still unfinished is one sentence the token
    # budget cut off, which would end the suggested answer mid-word, or a quotation it opened
    # and never closed (a role-play's line: 'Max's answer: "The answer is.').
    unfinished = not text.endswith((".", "!", "?", '"', "'", ")")) or text.count('"') % 2 == 1
    if len(text) < MIN_USEFUL_CHARS or harmful or only_refusal or echo or unfinished:
        alternative = safe_alternative(job.category)
    else:
        alternative = text
    return f"{REFUSAL_LINE} {alternative}"


def write(learner, jobs: list[WriteJob], batch_size: int = 8, max_new_tokens: int = 80,
          progress=None, should_cancel=None) -> list[str]:
    """Generate a revision for every job in one batched `learner.generate` call.

    `learner` is anything with `generate(prompts, config, progress=, should_cancel=)`, e.g.
    alignment_core.learner.Learner; a bigger local model on a GPU works the same way.
    """
    from alignment_core.learner import GenerationConfig

    if not jobs:
        return []
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, batch_size=batch_size)
    try:
        outputs = learner.generate([revision_messages(job) for job in jobs], config,
                                   progress=progress, should_cancel=should_cancel)
    except Exception as error:
        # Callers of the critic catch one Cancelled, whichever layer noticed the cancel.
        if type(error).__name__ == "Cancelled":
            raise Cancelled(str(error)) from error
        raise
    return [finish_revision(text, job) for text, job in zip(outputs, jobs)]
