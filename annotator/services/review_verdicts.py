"""What one expert decision makes of an item's label: its verdict, answer and severity.

Approve, edit and reject answer the critic (an assisted review); label is the verdict of an expert
who never saw the critic (a blind review). Each turns into the (final verdict, final response,
final severity) a Review records, or a ValidationError naming the field to fix; and the
harmlessness / helpfulness / honesty scores that decision gives the learner's answer.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from alignment_core.dimensions import DIMENSIONS, DimensionInput, check_scores, score_dimensions
from annotator.models import REVISED_VERDICTS, Critique, ReviewAction
from annotator.models.campaigns import Verdict

# "The critic is wrong" flips the verdict to its natural opposite unless the expert picks one.
VERDICT_FLIP = {
    Verdict.UNSAFE: Verdict.SAFE,
    Verdict.SAFE: Verdict.UNSAFE,
    Verdict.REFUSAL: Verdict.OVER_REFUSAL,
    Verdict.OVER_REFUSAL: Verdict.REFUSAL,
}

# The four quick reasons for "the critic is wrong" (keys 1-4 on the review page).
REJECT_REASONS = [
    ("false_alarm", "Flagged text is harmless"),
    ("missed_harm", "Critic missed the harm"),
    ("wrong_refusal", "Refusal judged wrongly"),
    ("guidelines", "Guidelines say otherwise"),
]
REJECT_REASON_CODES = {code for code, _ in REJECT_REASONS} | {"other"}


def severity_for(*, critique: Critique, verdict: str) -> int:
    """The critic's severity where the label agrees with it; otherwise at least 1 for unsafe, 0
    for anything else (the critic's figure was about a verdict the label overturned)."""
    if verdict == critique.verdict:
        return critique.severity
    return max(critique.severity, 1) if verdict == Verdict.UNSAFE else 0


def decision_label(*, critique: Critique, action: str, final_verdict: str | None,
                   corrected_response: str, reason_code: str) -> tuple[str, str, int | None]:
    """(final verdict, final response, final severity) for one decision, or ValidationError."""
    original = critique.response.text
    if action == ReviewAction.APPROVE:
        verdict = critique.verdict
        response = critique.approved_answer
        if verdict in REVISED_VERDICTS and not critique.suggested_revision.strip():
            raise ValidationError({"action": "The critique has no suggested revision to approve; "
                                             "edit it instead."})
        return verdict, response, critique.severity
    if action == ReviewAction.EDIT:
        if not corrected_response.strip():
            raise ValidationError({"corrected_response": "The corrected response is empty."})
        verdict = final_verdict or critique.verdict
        return verdict, corrected_response, critique.severity
    if action == ReviewAction.REJECT:
        if reason_code not in REJECT_REASON_CODES:
            raise ValidationError(
                {"reason_code": "Pick a reason (1-4) for rejecting the critique."})
        verdict = final_verdict or VERDICT_FLIP[Verdict(critique.verdict)]
        if verdict == critique.verdict:
            raise ValidationError({"final_verdict": "Rejecting needs a verdict different from "
                                                    "the critic's."})
        # A verdict that needs a better answer takes the expert's text (possibly none yet: the
        # label still teaches the critic); otherwise the learner's original answer was fine.
        response = corrected_response if verdict in REVISED_VERDICTS else original
        return verdict, response, severity_for(critique=critique, verdict=verdict)
    if action == ReviewAction.LABEL:
        if not final_verdict:
            raise ValidationError({"final_verdict": "Pick a verdict (1-4) for this answer."})
        # The box starts from the learner's answer: a rewrite is the expert's better answer; an
        # untouched box keeps the original where it is acceptable and leaves an answer that
        # needs replacing without one (the label still counts, as with a rejection).
        rewritten = corrected_response.strip() and corrected_response != original
        if rewritten:
            response = corrected_response
        else:
            response = "" if final_verdict in REVISED_VERDICTS else original
        return final_verdict, response, severity_for(critique=critique, verdict=final_verdict)
    raise ValidationError({"action": f"Unknown action {action!r}."})


def check_action_fits(*, action: str, blind: bool) -> None:
    """A blind item is labelled (or skipped); an assisted one is approved, edited or rejected."""
    if blind and action in (ReviewAction.APPROVE, ReviewAction.EDIT, ReviewAction.REJECT):
        raise ValidationError({"action": "This item was shown without the critic: label it with "
                                         "a verdict (keys 1-4) or skip it."})
    if not blind and action == ReviewAction.LABEL:
        raise ValidationError({"action": "Label is for items shown without the critic; approve, "
                                         "edit or reject this critique."})


def clean_dimensions(values: dict | None) -> dict[str, int]:
    """An expert's dimension corrections ({name: 0-4}, any subset), or ValidationError."""
    try:
        return check_scores(values or {})
    except ValueError as error:
        raise ValidationError({"dimensions": str(error)}) from None


def decision_dimensions(*, critique: Critique, verdict: str, severity: int | None,
                        corrections: dict[str, int]) -> dict[str, int]:
    """{dimension: 0-4} a decision gives the learner's answer: the critic's scores where the
    decision keeps its verdict and severity, else the scorer's reading of the decision's verdict
    (an overturned verdict carries its scores with it), then the expert's corrections on top.
    Needs the critique's response and attack loaded (no query)."""
    if verdict == critique.verdict and (severity is None or severity == critique.severity):
        base = critique.scores
    else:
        response = critique.response
        base = score_dimensions(DimensionInput(response.attack.text, response.text, verdict,
                                               severity or 0, critique.category)).to_dict()
    return {name: int(corrections.get(name, base[name])) for name in DIMENSIONS}
