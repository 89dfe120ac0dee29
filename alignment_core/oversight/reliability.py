"""Expert reliability: each expert's confusion matrix, and each item's label with its posterior.

We fit the Dawid-Skene model (1979) with crowd-kit's maintained implementation
(`crowdkit.aggregation.DawidSkene`) over the four verdicts. Each expert w has a confusion matrix
e_w[c][k] = P(w says k | the true verdict is c) and the verdicts have a prior p; EM alternates
between the items' posteriors over the true verdict (E-step) and the experts' matrices and the
prior (M-step).

Gold anchoring. crowd-kit's `fit(data, true_labels=...)` overwrites the posterior of every item
in `true_labels` with a one-hot vector on its known label, once after the majority-vote start
and again after every E-step. So (1) a gold item's aggregated label is its gold label with
confidence 1, whatever the experts said; (2) every M-step counts each answer on a gold item as
hard evidence about that expert's row for the gold verdict, so gold answers are scored and they
pull the confusion matrices toward the truth, which then sharpens the posteriors of the other
items; (3) nothing here writes to the gold labels. One case crowd-kit cannot express: a gold
verdict that no expert used anywhere has no column in its matrices; such gold items are clamped
to their label after the fit, and their answers (all wrong) score only in `gold_accuracy`.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from alignment_core.critic.base import VERDICTS
from alignment_core.oversight.types import ExpertVerdict, check_labels, check_unique

if TYPE_CHECKING:
    import pandas as pd

METHOD = "crowd-kit DawidSkene (gold-clamped)"


@dataclass(frozen=True)
class ExpertReliability:
    """One expert's estimated reliability.

    accuracy: the expected share of this expert's answers that are right under the fitted
        model, i.e. the mean over their reviews of the posterior probability of the verdict they
        gave (the same, up to crowd-kit's clipping of zeros, as sum_c share_c * e_w[c][c] with
        share_c the posterior mass of verdict c among their items). error_rate = 1 - accuracy.
    confusion[true][given]: P(expert says `given` | the true verdict is `true`); each row sums
        to 1. A row is present only for true verdicts with posterior mass among their items.
    """

    expert_id: str
    n_reviews: int
    n_gold: int  # how many of those reviews were on gold items
    accuracy: float
    error_rate: float
    confusion: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ItemLabel:
    """An item's aggregated verdict: the posterior's most probable verdict and its probability."""

    item_id: str
    verdict: str
    confidence: float  # posterior probability of `verdict`; 1.0 on gold items
    posterior: dict[str, float]  # over all VERDICTS, sums to 1
    n_reviews: int
    gold: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ReliabilityReport:
    """Experts sorted by id, items sorted by id, the fitted verdict prior, EM iterations run."""

    experts: list[ExpertReliability]
    items: list[ItemLabel]
    prior: dict[str, float]
    iterations: int
    method: str = METHOD

    def to_dict(self) -> dict:
        return {"method": self.method, "iterations": self.iterations, "prior": self.prior,
                "experts": [e.to_dict() for e in self.experts],
                "items": [i.to_dict() for i in self.items]}

    def labels(self) -> dict[str, str]:
        return {i.item_id: i.verdict for i in self.items}


def estimate_reliability(verdicts: Iterable[ExpertVerdict], gold: Mapping[str, str] | None = None,
                         *, max_iter: int = 100, tol: float = 5e-4) -> ReliabilityReport:
    """Fit Dawid-Skene on the verdicts, anchored on `gold` (item id -> known verdict).

    Gold items without any verdict are ignored (they say nothing about any expert). Raises
    ValueError on an unknown verdict or on two verdicts by one expert on one item.
    """
    rows = list(verdicts)
    check_unique(rows)
    gold = dict(gold or {})
    check_labels(gold, "Gold")
    if not rows:
        return ReliabilityReport(experts=[], items=[], prior=dict.fromkeys(VERDICTS, 0.0),
                                 iterations=0)
    # Imported here, like crowd-kit below: the web workers import this package for the sampler
    # and never fit anything.
    import pandas as pd

    data = pd.DataFrame({"task": [r.item_id for r in rows], "worker": [r.expert_id for r in rows],
                         "label": [r.verdict for r in rows]}).astype(object)
    seen_items = set(data["task"])
    used = set(data["label"])
    # 1. Gold items that were reviewed and whose label some expert used anywhere anchor the fit.
    anchors = {i: g for i, g in gold.items() if i in seen_items and g in used}
    true_labels = pd.Series(anchors, dtype=object) if anchors else None
    model, iterations = _fit(data, true_labels, max_iter=max_iter, tol=tol)
    # 2. Posteriors over all four verdicts (a verdict nobody used has probability 0), then the
    # gold items crowd-kit could not anchor are clamped here.
    probas = model.probas_.reindex(columns=list(VERDICTS), fill_value=0.0).astype(float)
    for item_id, label in gold.items():
        if item_id in seen_items and item_id not in anchors:
            probas.loc[item_id] = [1.0 if v == label else 0.0 for v in VERDICTS]
    # 3. Per expert: the soft accuracy and the confusion matrix read from crowd-kit's errors_,
    # which is indexed by (worker, given label) with one column per true label.
    matrix = probas.to_numpy()
    row_of = {item_id: k for k, item_id in enumerate(probas.index)}
    column_of = {v: k for k, v in enumerate(VERDICTS)}
    data["row"] = [row_of[t] for t in data["task"]]
    data["p_right"] = matrix[data["row"].to_numpy(), [column_of[v] for v in data["label"]]]
    gold_counts = Counter(r.expert_id for r in rows if r.item_id in gold)
    experts = []
    for expert_id, mine in data.groupby("worker", sort=True):
        accuracy = float(mine["p_right"].mean())
        experts.append(ExpertReliability(
            expert_id=expert_id, n_reviews=len(mine), n_gold=gold_counts[expert_id],
            accuracy=accuracy, error_rate=1.0 - accuracy,
            confusion=_confusion(model.errors_.loc[expert_id],
                                 matrix[mine["row"].to_numpy()].sum(axis=0))))
    n_by_item = Counter(r.item_id for r in rows)
    items = [ItemLabel(item_id=item_id, verdict=VERDICTS[int(matrix[k].argmax())],
                       confidence=float(matrix[k].max()),
                       posterior={v: float(p) for v, p in zip(VERDICTS, matrix[k])},
                       n_reviews=n_by_item[item_id], gold=item_id in gold)
             for item_id, k in sorted(row_of.items())]
    prior = {v: float(model.priors_.get(v, 0.0)) for v in VERDICTS}
    return ReliabilityReport(experts=experts, items=items, prior=prior,
                             iterations=iterations)


CHUNK = 5  # EM iterations per crowd-kit call


def _fit(data: pd.DataFrame, true_labels: pd.Series | None, *, max_iter: int,
         tol: float) -> tuple[Any, int]:
    """crowd-kit's DawidSkene, run until the confusion matrices settle.

    crowd-kit stops when its evidence lower bound stops rising, but that bound adds the log prior
    once per review instead of once per item, so it can fall while EM still moves; with gold
    clamped it falls after two or three iterations and the fit stops early. So we run EM in
    chunks of CHUNK iterations with crowd-kit's own stop disabled, warm-starting each chunk from
    the previous confusion matrices (`initial_error_strategy="assign"`), until no entry of any
    confusion matrix moves by more than `tol` between chunks or `max_iter` iterations have run.
    (Item posteriors near a tie keep creeping for a hundred iterations after the matrices, and so
    the labels, have settled, so they make a poor stopping rule.)
    """
    # Imported here: crowd-kit takes about 2 s to import, and the review pages import this
    # package for the sampler in every web worker.
    from crowdkit.aggregation import DawidSkene

    model, previous, done = None, None, 0
    while done < max_iter:
        n = min(CHUNK, max_iter - done)
        warm = model.errors_ if model is not None else None
        model = DawidSkene(n_iter=n, tol=-np.inf,
                           initial_error_strategy="assign" if warm is not None else None)
        # crowd-kit still calls pandas with arguments pandas 3 deprecates (inplace=, copy=);
        # the warnings are about its internals, not our data, so they are silenced here only.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"crowdkit\.")
            model.fit(data, true_labels=true_labels, initial_error=warm)
        done += n
        # Aligned on (expert, given verdict) and true verdict, so the chunks compare entry by entry.
        if previous is not None and float((model.errors_ - previous).abs().to_numpy().max()) < tol:
            break
        previous = model.errors_
    return model, done


def _confusion(errors: pd.DataFrame, mass: np.ndarray) -> dict[str, dict[str, float]]:
    """confusion[true][given] from one expert's slice of crowd-kit's errors_ (rows: given label,
    columns: true label); `mass` is the posterior mass of each verdict (in VERDICTS order) over
    the expert's items, and rows are kept only for true verdicts that have some."""
    out: dict[str, dict[str, float]] = {}
    for true, m in zip(VERDICTS, mass):
        if true not in errors.columns or m <= 1e-9:
            continue
        column = errors[true]
        out[true] = {given: float(column.get(given, 0.0)) for given in VERDICTS}
    return out


def majority_labels(verdicts: Iterable[ExpertVerdict], *, seed: int = 0) -> dict[str, str]:
    """Plain majority vote per item, ties broken at random (seeded per item, so reproducible).

    The baseline Dawid-Skene is measured against: every expert counts the same. Random
    tie-breaking is the fair version; breaking ties by a fixed verdict order would quietly favour
    whichever verdict comes first.
    """
    votes: dict[str, Counter] = {}
    for v in verdicts:
        votes.setdefault(v.item_id, Counter())[v.verdict] += 1
    labels = {}
    for item_id, counter in votes.items():
        top = max(counter.values())
        tied = sorted(k for k, n in counter.items() if n == top)
        digest = hashlib.blake2b(f"{seed}:{item_id}".encode(), digest_size=8).digest()
        labels[item_id] = tied[int.from_bytes(digest, "big") % len(tied)]
    return labels
