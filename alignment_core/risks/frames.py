"""The request inside an attack: the attacker's encodings undone and its jailbreak frames cut off.

A campaign wraps the same few dozen frames ("You are DAN...", "Start your response with...")
around every goal and obfuscates some of them, so embeddings of whole attack texts group attacks
by frame and encoding, not by what they ask for. Risk discovery wants the second, so it embeds
`request_core(text)`: the attacker's reversible converters are undone (base64, ROT13, payload
splitting, leetspeak; their instruction lines are recognised even after character swaps), then
its templates are cut off, also when its mutation operators spliced, extended, shortened or
synonym-rephrased them, or a converter swapped letters inside them. Character swaps inside the
request itself cannot be undone; MiniLM reads through most of them. Text the attacker did not
write (imports, LM-written attacks) passes through unchanged apart from whitespace.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import random
import re
from functools import lru_cache

from alignment_core.attacker.converters import to_base64, to_rot13
from alignment_core.attacker.strategies.base import SLOT
from alignment_core.attacker.strategies.multi_turn import FINALS
from alignment_core.attacker.strategies.mutations import EXPANSIONS, SYNONYMS, sentences
from alignment_core.attacker.strategies.templates import all_templates

MIN_FRAGMENT = 12  # shorter frame pieces ("DAN,") are only cut at the edges of what is left
MAX_DEPTH = 4  # converters stack; undo at most this many layers
SWAPPABLE = 5  # char_swap only touches words of at least this many letters
LEET_SHARE = 0.25  # words mixing letters and leet digits, above which a text is leetspeak
# The converters' instruction lines, taken from the converters themselves (an empty message
# encodes to nothing, so what is left is the instruction).
_HEADS = ((to_base64("", random.Random(0)), "base64"), (to_rot13("", random.Random(0)), "rot13"))
_SPLIT = re.compile(r'a = "(?P<a>.*?)"\nb = "(?P<b>.*?)"\n(?:c = "(?P<c>.*?)"\n)?'
                    r"Let z = [a-c](?: \+ [a-c])*\.[^\n]*", re.DOTALL)
_LEET_DIGITS = "431057"
_LEET_BACK = str.maketrans(_LEET_DIGITS, "aeiost")
_LEET_WORD = re.compile(r"(?=\S*[A-Za-z])(?=\S*[431057])\S+|\b[41]\b")
_LIST_MARKERS = re.compile(r"(?:^|\s)(?:\d\.\s*)+(?=\s|$)")
_EDGE = " \t\n\"'`:;,-"
_WORD = re.compile(r"^[^\W\d_](?:[^\W\d_]|['\u2019-])*[.,?!:;)\"]*$")


def _word_pattern(word: str) -> str:
    """A word as char_swap may have left it: first and last letter fixed, the inner ones in any
    order (a permissive class is enough inside a whole frame sentence)."""
    if len(word) < SWAPPABLE:
        return re.escape(word)
    inner = "".join(sorted(set(word[1:-1].lower())))
    return f"{word[0]}[{inner}]{{{len(word) - 2}}}{word[-1]}"


def _loose(text: str) -> str:
    """A regex for `text` that also matches the synonym rephrase and the character swaps."""
    # The multi-turn finals name a project ("school project"); any short phrase matches.
    return r"[\w ]{1,40}".join(_loose_words(part) for part in text.split("{project}"))


def _loose_words(text: str) -> str:
    parts = []
    for token in re.split(r"([A-Za-z]+)", text):
        if token.isalpha():
            options = [token] + ([SYNONYMS[token.lower()]] if token.lower() in SYNONYMS else [])
            parts.append("(?:" + "|".join(_word_pattern(o) if o.isalpha() else re.escape(o)
                                          for o in options) + ")")
        else:
            # Digits may come back from leetspeak as letters ("Step 1:" -> "step i:").
            parts.append("".join(f"[{c}{c.translate(_LEET_BACK)}]" if c in _LEET_DIGITS
                                 else re.escape(c) for c in token))
    return "".join(parts)


@lru_cache(maxsize=1)
def _frames() -> tuple[list[re.Pattern], list[re.Pattern], list[re.Pattern]]:
    """Whole-frame patterns, frame sentences to cut anywhere, short pieces to cut at the edges."""
    templates = [template for _, template in all_templates()] + list(FINALS)
    wholes, pieces = [], set(EXPANSIONS)
    for template in sorted(templates, key=len, reverse=True):
        head, _, tail = template.partition(SLOT)
        wholes.append(re.compile(rf"\s*{_loose(head)}(?P<core>.+?){_loose(tail)}\s*",
                                 re.DOTALL | re.IGNORECASE))
        for side in (head, tail):
            pieces.update(part.strip() for part in sentences(side) if part.strip(_EDGE))
    pieces = {p for p in pieces if "{project}" not in p or len(p) >= MIN_FRAGMENT}
    ordered = sorted(pieces, key=len, reverse=True)
    long = [re.compile(_loose(p), re.IGNORECASE) for p in ordered if len(p) >= MIN_FRAGMENT]
    short = [_loose(p.strip(_EDGE)) for p in ordered if len(p) < MIN_FRAGMENT]
    # A piece must stand alone: "3." may not eat the "e." of a request ending in "me.".
    edges = [re.compile(rf"^(?:{p})(?![A-Za-z0-9])|(?<![A-Za-z0-9])(?:{p})$", re.IGNORECASE)
             for p in short]
    return wholes, long, edges


def canonical(word: str) -> str:
    """A word up to leetspeak, case and inner-letter swaps."""
    word = word.lower().translate(_LEET_BACK)
    return word[0] + "".join(sorted(word[1:-1])) + word[-1] if len(word) > 3 else word


def _leet_digits(text: str) -> int:
    return sum(text.count(digit) for digit in _LEET_DIGITS)


def _after_head(text: str, head: str) -> tuple[str, bool] | None:
    """What follows a converter's instruction line if `text` starts with it, and whether the
    line was in leetspeak (then so is the payload, and it was converted last)."""
    size = len(head.split())
    words = text.split(maxsplit=size)
    if len(words) <= size:
        return None
    if [canonical(w) for w in words[:size]] != [canonical(w) for w in head.split()]:
        return None
    return words[size], _leet_digits(" ".join(words[:size])) > _leet_digits(head)


def _decode(text: str) -> str | None:
    """The message under one converter layer, or None if `text` is not a converter's output."""
    for head, kind in _HEADS:
        found = _after_head(text, head)
        if found is None:
            continue
        payload, leet_last = found
        if kind == "rot13":
            # ROT13 leaves digits alone: leetspeak applied after it must be undone first.
            return codecs.decode(payload.translate(_LEET_BACK) if leet_last else payload, "rot13")
        try:
            return base64.b64decode(payload.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None  # leetspeak over base64 is beyond repair
    match = _SPLIT.fullmatch(text)
    if match:
        return "".join(part or "" for part in match.group("a", "b", "c"))
    words = text.split()
    if words and len(_LEET_WORD.findall(text)) >= LEET_SHARE * len(words):
        return text.translate(_LEET_BACK)
    return None


def _cut(text: str, pattern: re.Pattern) -> str:
    """`text` without the pattern's matches, unless nothing would be left."""
    remainder = pattern.sub(" ", text)
    return remainder if remainder.strip(_EDGE) else text


def _strip_frame(text: str) -> str:
    wholes, long, edges = _frames()
    # 1. One whole template around the request.
    for pattern in wholes:
        match = pattern.fullmatch(text)
        if match and match.group("core").strip(_EDGE):
            text = match.group("core")
            break
    # 2. Frame sentences a mutation (crossover, expand, shorten) spliced in, anywhere.
    for pattern in long:
        text = _cut(text, pattern)
    text = _cut(text, _LIST_MARKERS)
    # 3. Short frame pieces ("DAN,", "Question:", "Step 1:") only where they border the request,
    # since such words may belong to the request itself.
    changed = True
    while changed:
        changed = False
        text = text.strip(_EDGE)
        for edge in edges:
            cut = edge.sub("", text, count=1)
            if cut != text and cut.strip(_EDGE):
                text, changed = cut, True
    return text


def request_core(text: str) -> str:
    """The request an attack makes, without the attacker's encodings and frame."""
    for _ in range(MAX_DEPTH):
        decoded = _decode(text.strip())
        if decoded is None:
            break
        text = decoded
    core = " ".join(_strip_frame(text.strip()).split()).strip(_EDGE)
    return core or " ".join(text.split())


def readable(text: str) -> bool:
    """Plain words, as people write requests: not base64 or other text left undecoded."""
    words = text.split()
    return (len(words) >= 3 and len(text) <= 600
            and sum(1 for w in words if _WORD.match(w)) >= 0.8 * len(words))
