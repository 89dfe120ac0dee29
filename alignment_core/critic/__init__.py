"""The critic: judges learner responses and writes structured critiques.

Layers: objective detectors (canaries, refusal phrases) -> a pretrained three-factor model
(harmful request x refuses x harmful content; trained on vendored public human-labelled data)
corrected per project by a head fitted on expert decisions, with optional extra voters -> a
calibrated confidence -> grounded explanations, and a language model drafting the revisions
that need new text. Pick a critic by name with `make_critic("layered", learner=..., head=...)`.
Statistics for the Django side: calibration.py, autoaccept.py, informativeness.py.
"""

from alignment_core.critic.autoaccept import Threshold, audits_to_lower, auto_accept_threshold
from alignment_core.critic.base import (
    CRITICS,
    DEFAULT_CRITIC,
    VERDICTS,
    Cancelled,
    Critic,
    Critique,
    CritiqueInput,
    Span,
    make_critic,
    make_span,
    register_critic,
)
from alignment_core.critic.calibration import (
    Calibrator,
    expected_calibration_error,
    fit_calibrator,
    reliability_bins,
    select_calibrator,
)
from alignment_core.critic.head import MIN_EXAMPLES, LearnedHead, train_head
from alignment_core.critic.informativeness import informativeness
from alignment_core.critic.layered import LayeredCritic, RulesCritic
from alignment_core.critic.votes import Vote, Voter

__all__ = [
    "CRITICS", "DEFAULT_CRITIC", "MIN_EXAMPLES", "VERDICTS", "Calibrator", "Cancelled", "Critic",
    "Critique", "CritiqueInput", "LayeredCritic", "LearnedHead", "RulesCritic", "Span",
    "Threshold", "Vote", "Voter", "audits_to_lower", "auto_accept_threshold",
    "expected_calibration_error", "fit_calibrator", "informativeness", "make_critic",
    "make_span", "register_critic", "reliability_bins", "select_calibrator", "train_head",
]
