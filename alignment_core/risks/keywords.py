"""Keywords per cluster by class-based TF-IDF (c-TF-IDF), as BERTopic defines it.

All texts of a cluster are joined into one document. For word x and cluster c:

    W(x, c) = tf(x, c) / |c| * log(1 + A / f(x))

where tf(x, c) counts x in cluster c, |c| is the number of words in c (the L1 norm of its row),
f(x) counts x over all clusters and A is the average number of words per cluster (Grootendorst
2022, "BERTopic", eq. 1; BERTopic's ClassTfidfTransformer without its options). Noise is one
more class, so words common everywhere (frames, "sure", "step") score low in every cluster.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

# Words every request and answer uses, on top of scikit-learn's English stop words; they carry
# no topic, and on small data c-TF-IDF alone does not always push them down.
FILLERS = frozenset({
    "sure", "here", "step", "steps", "tell", "help", "want", "need", "know", "make", "way",
    "ways", "just", "like", "really", "absolutely", "certainly", "course", "going", "use", "using",
    "thing", "things", "able", "let", "ll", "don", "doesn", "isn", "ve", "re",
})
TOKEN_PATTERN = r"(?u)\b[a-zA-Z][a-zA-Z]+\b"  # words of two letters or more, no digits


def class_tfidf(counts: np.ndarray) -> np.ndarray:
    """c-TF-IDF weights from a (classes x words) count matrix; empty classes score zero."""
    counts = np.asarray(counts, dtype=np.float64)
    words_per_class = counts.sum(axis=1, keepdims=True)
    tf = counts / np.maximum(words_per_class, 1.0)
    frequency = counts.sum(axis=0)
    average = words_per_class.mean()
    idf = np.log(1.0 + average / np.maximum(frequency, 1.0))
    return tf * idf


def cluster_keywords(texts: Sequence[str], labels: Sequence[Hashable], top: int = 8,
                     skip: Sequence[Hashable] = ()) -> dict[Hashable, list[str]]:
    """The `top` c-TF-IDF words of every label's texts (labels in `skip`, e.g. noise, still count
    towards f(x) and A but get no keywords). Ties go to the alphabetically first word."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    classes = list(dict.fromkeys(labels))
    joined = {label: [] for label in classes}
    for text, label in zip(texts, labels):
        joined[label].append(text)
    documents = [" ".join(joined[label]) for label in classes]
    vectorizer = CountVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN,
                                 stop_words=sorted(ENGLISH_STOP_WORDS | FILLERS))
    try:
        counts = vectorizer.fit_transform(documents).toarray()
    except ValueError:  # nothing but stop words anywhere
        return {label: [] for label in classes if label not in skip}
    vocabulary = vectorizer.get_feature_names_out()
    weights = class_tfidf(counts)
    keywords = {}
    for row, label in enumerate(classes):
        if label in skip:
            continue
        order = sorted(np.flatnonzero(weights[row] > 0),
                       key=lambda column: (-weights[row, column], vocabulary[column]))
        keywords[label] = [str(vocabulary[column]) for column in order[:top]]
    return keywords
