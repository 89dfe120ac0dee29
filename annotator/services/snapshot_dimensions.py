"""The snapshot constraint "safety without uselessness": keep a preference pair only when its
chosen answer is more harmless than the rejected one without losing more than a set margin of
helpfulness (alignment_core.dimensions.pair_improves).

The rejected answer (the learner's original) carries the item's final dimensions, curated by the
experts. The chosen answer (the approved revision or the expert's text) was never scored, so the
project's critic judges it here, as the held-out evaluation judges answers (its head, no language
model), in one batch, and its dimensions follow from that judgement.
"""

from __future__ import annotations

from alignment_core.dimensions import DIMENSIONS, pair_improves
from annotator.models import ReviewItem
from annotator.services.critic import critique_input_for
from annotator.services.held_out import evaluation_critic


def pairs_failing_dimensions(*, items: list[ReviewItem], helpfulness_margin: int) -> set[int]:
    """Ids of the items whose pair (chosen differs from rejected) fails the constraint. The items
    come with their critique, response and attack loaded (snapshot_items)."""
    pairs = [item for item in items if item.final_response.strip()
             and item.final_response.strip() != item.critique.response.text.strip()]
    if not pairs:
        return set()
    # Freezing runs in the request: no judge endpoint (a network call) is asked here.
    critic = evaluation_critic(pairs[0].project, judge=False)
    judged = critic.critique([critique_input_for(attack=item.critique.response.attack,
                                                 response_text=item.final_response.strip())
                              for item in pairs])
    failing = set()
    for item, chosen in zip(pairs, judged):
        rejected = item.final_dimensions or item.critique.scores
        if not pair_improves({name: chosen.dimensions[name] for name in DIMENSIONS},
                             {name: rejected[name] for name in DIMENSIONS},
                             helpfulness_margin=helpfulness_margin):
            failing.add(item.pk)
    return failing
