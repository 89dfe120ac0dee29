"""Template revisions, quoting helpers, and the text clean-up shared with the LM writer.

With the LM layer off the template revision is the critic's suggestion; with it on it is the
fallback whenever the model's text is empty, repetitive or unsafe. Explanations are written by
explain.py and always quote the flagged spans verbatim so a reviewer can find them.
"""

from __future__ import annotations

import re

from alignment_core.critic.base import Span

REFUSAL_LINE = "I can't help with that, because it could cause real harm."
SAFE_ALTERNATIVES = {
    "weapons": "If you are interested in the topic, I can explain the history, the science at a "
               "general level, or the laws and safety rules that apply.",
    "drugs": "If this is about your health or someone else's, a doctor, pharmacist or a local "
             "drug-support service can help confidentially; I can also explain the risks in general terms.",
    "cybercrime": "If you want to learn security, I can suggest legal ways in, such as capture-the-flag "
                  "exercises, practice labs and how to report vulnerabilities responsibly.",
    "fraud": "If you are short of money or documents, I can explain the legitimate ways to get an ID, "
             "credit or financial advice instead.",
    "violence": "If you are in conflict with someone, I can suggest ways to stay safe and de-escalate, "
                "or how to contact people who can help.",
    "self_harm": "If you are struggling, please reach out to someone you trust or a local crisis line; "
                 "you deserve support, and I am glad to talk about what is going on.",
    "hate": "I am happy to discuss the topic respectfully, including the history and the evidence "
            "about the groups involved.",
    "harassment": "If someone has hurt you, I can help you think through respectful ways to respond "
                  "or how to report it.",
    "privacy": "I can explain how people protect their own privacy, or the legal ways to contact "
               "someone or request information.",
    "misinformation": "I can help you find reliable sources and explain what the evidence actually says.",
    "theft": "If you are locked out or in need, I can point you to legitimate help such as a "
             "licensed locksmith, the owner, or local support services.",
    "extremism": "I can explain how extremist groups recruit and how communities counter them.",
    "sexual": "I can help with general, age-appropriate information on relationships and safety.",
}
GENERIC_ALTERNATIVE = ("If you tell me more about what you are trying to achieve, I am glad to "
                       "help with a safe and legal way to do it.")


def quote(spans: list[Span]) -> str:
    """The spans' texts as a quoted, comma-separated list."""
    return ", ".join(f'"{span.text}"' for span in spans)


def ensure_quotes(explanation: str, spans: list[Span]) -> str:
    """Append the flagged passages the explanation does not quote yet; faithfulness is not optional."""
    missing = [span for span in spans if f'"{span.text}"' not in explanation]
    if not missing:
        return explanation
    tail = f"Flagged passage{'s' if len(missing) > 1 else ''}: {quote(missing)}."
    return f"{explanation.rstrip()} {tail}".strip()


def safe_alternative(category: str) -> str:
    from alignment_core.critic.rules import canonical_category

    return SAFE_ALTERNATIVES.get(canonical_category(category), GENERIC_ALTERNATIVE)


def template_revision(verdict: str, category: str, query: str, response: str) -> str:
    """A usable better answer without a model: refuse-and-redirect, or keep a good answer."""
    if verdict in ("unsafe", "refusal"):
        return f"{REFUSAL_LINE} {safe_alternative(category)}"
    if verdict == "over_refusal":
        # Without a model the critic cannot write the answer itself; it says what one must do.
        return (f"This is a harmless request, so it deserves a direct answer: respond to "
                f"\"{clean_text(query, 300)}\" helpfully and without a refusal or a warning.")
    return clean_text(response) or response


_SENTENCE_RE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")


def clean_text(text: str, max_chars: int = 700) -> str:
    """Tidy model text: drop repeated sentences and looping phrases, cap the length.

    Small models often repeat a sentence or a phrase until the token budget ends; reviewers and
    the training data should not inherit that.
    """
    # 1. Drop special-token debris and normalise spaces.
    text = re.sub(r"<\|[^|>]*\|>", " ", text or "")
    text = re.sub(r"[ \t]+", " ", text).strip()
    # 2. Keep each sentence once (case and spacing ignored).
    seen: set[str] = set()
    kept: list[str] = []
    for match in _SENTENCE_RE.finditer(text):
        sentence = match.group().strip()
        key = re.sub(r"\W+", " ", sentence.lower()).strip()
        if not key or key in seen:
            continue
        seen.add(key)
        kept.append(_cut_loop(sentence))
    text = " ".join(kept)
    # 3. A generation cut off by the token budget ends mid-sentence; drop that fragment when a
    # complete sentence precedes it.
    last_end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
    if text and text[-1] not in ".!?\"')" and last_end > 0:
        text = text[: last_end + 1]
    # 4. Cap the length at a sentence end when one is near.
    if len(text) > max_chars:
        cut = text[:max_chars]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        text = cut[: end + 1] if end > max_chars // 2 else cut.rstrip() + "…"
    return text.strip()


def _cut_loop(sentence: str, n: int = 4) -> str:
    """Cut a sentence where an n-word phrase starts repeating."""
    words = sentence.split(" ")
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(w.lower() for w in words[i : i + n])
        if gram in seen:
            return " ".join(words[:i]).rstrip(",;: ") + "."
        seen.add(gram)
    return sentence
