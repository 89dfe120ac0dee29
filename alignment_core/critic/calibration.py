"""Confidence that means something: the probability that the verdict is right.

Plain functions on (confidence, correct) pairs, so the Django side can fit a calibrator on its
experts' decisions at each retrain and draw the reliability diagram from the same numbers.

- `fit_calibrator(conf, correct, method="platt" | "isotonic")` -> Calibrator (JSON-able)
- `select_calibrator(conf, correct)` -> the method with the lowest cross-validated ECE
- `expected_calibration_error(conf, correct, bins=10)`
- `reliability_bins(conf, correct, bins=10)` -> list[ReliabilityBin]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

EPS = 1e-4
MIN_FIT = 10  # fewer pairs than this, or only one outcome: the calibrator stays the identity


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass
class Calibrator:
    """Maps a raw confidence to a calibrated one.

    "identity" leaves it alone; "platt" is a logistic curve on the raw confidence's log-odds
    (two parameters: robust with few labels); "isotonic" is a monotone step function (x, y).
    """

    method: str = "identity"
    a: float = 1.0
    b: float = 0.0
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    n: int = 0

    def __call__(self, confidence: Sequence[float] | np.ndarray) -> np.ndarray:
        c = np.asarray(confidence, dtype=np.float64)
        if self.method == "platt":
            out = 1.0 / (1.0 + np.exp(-(self.a * _logit(c) + self.b)))
        elif self.method == "isotonic" and self.x:
            out = np.interp(c, self.x, self.y)
        else:
            out = c
        return np.clip(out, 0.0, 1.0)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(a=round(self.a, 6), b=round(self.b, 6), x=[round(v, 6) for v in self.x],
                    y=[round(v, 6) for v in self.y])
        return data

    @classmethod
    def from_dict(cls, data: dict | None) -> Calibrator:
        if not data:
            return cls()
        return cls(method=str(data.get("method", "identity")), a=float(data.get("a", 1.0)),
                   b=float(data.get("b", 0.0)), x=[float(v) for v in data.get("x", [])],
                   y=[float(v) for v in data.get("y", [])], n=int(data.get("n", 0)))


def fit_calibrator(confidence: Sequence[float], correct: Sequence[bool],
                   method: str = "platt") -> Calibrator:
    """Fit on (raw confidence, was the verdict right) pairs; the identity when data is too thin."""
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    if len(c) != len(y):
        raise ValueError("confidence and correct must have the same length")
    if len(c) < MIN_FIT or y.all() or not y.any():
        return Calibrator(n=len(c))
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=100.0).fit(_logit(c).reshape(-1, 1), y)
        return Calibrator("platt", a=float(model.coef_[0][0]), b=float(model.intercept_[0]),
                          n=len(c))
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(c, y)
        return Calibrator("isotonic", x=[float(v) for v in model.X_thresholds_],
                          y=[float(v) for v in model.y_thresholds_], n=len(c))
    raise ValueError(f"Unknown calibration method {method!r}; use 'platt' or 'isotonic'")


def select_calibrator(confidence: Sequence[float], correct: Sequence[bool],
                      methods: Sequence[str] = ("identity", "platt", "isotonic"),
                      folds: int = 5) -> Calibrator:
    """The method with the lowest cross-validated ECE, refitted on all pairs.

    With a few hundred pairs a fitted curve can calibrate worse than none (it chases noise in
    the bins), so the choice is made on pairs each candidate did not see.
    """
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    if len(c) < MIN_FIT * folds:
        return fit_calibrator(c, y, "platt")
    order = np.arange(len(c)) % folds
    best, best_error = "identity", None
    for method in methods:
        out = np.zeros(len(c))
        for f in range(folds):
            train, test = order != f, order == f
            calibrator = Calibrator() if method == "identity" else fit_calibrator(
                c[train], y[train], method)
            out[test] = calibrator(c[test])
        error = expected_calibration_error(out, y)
        if best_error is None or error < best_error:
            best, best_error = method, error
    return Calibrator(n=len(c)) if best == "identity" else fit_calibrator(c, y, best)


@dataclass
class ReliabilityBin:
    """One bar of a reliability diagram: items whose confidence falls in [lo, hi)."""

    lo: float
    hi: float
    n: int
    mean_confidence: float | None
    accuracy: float | None


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool],
                     bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width confidence bins with their mean confidence and accuracy (None when empty)."""
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # The last bin is closed on the right so a confidence of exactly 1.0 is counted.
    which = np.minimum(np.searchsorted(edges, c, side="right") - 1, bins - 1)
    out = []
    for k in range(bins):
        mask = which == k
        n = int(mask.sum())
        out.append(ReliabilityBin(lo=float(edges[k]), hi=float(edges[k + 1]), n=n,
                                  mean_confidence=float(c[mask].mean()) if n else None,
                                  accuracy=float(y[mask].mean()) if n else None))
    return out


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool],
                               bins: int = 10) -> float:
    """Sum over bins of (share of items) * |accuracy - mean confidence|."""
    total = len(confidence)
    if total == 0:
        return 0.0
    return float(sum(b.n / total * abs(b.accuracy - b.mean_confidence)
                     for b in reliability_bins(confidence, correct, bins) if b.n))
