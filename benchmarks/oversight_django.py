"""The oversight simulation's review queue through the real Django services.

`DjangoBackend` implements `oversight_sim.ReviewBackend` with the app's own review loop: a project
with the simulation's blind and gold shares (its oversight seed is the simulation's seed),
items as a campaign would queue them (attack -> response -> critique -> review item), gold items
settled by an admin through `review_adjudicate` and marked through `review_item_gold_set`, then
for every simulated decision `review_claim_next` (which serves blind items and gold probes) and
`review_submit`. The verdicts come back the way the reliability job reads them
(`oversight_inputs`). The caller sets Django up: the benchmark on a throwaway SQLite file (as
`review_latency.py` does), the tests in pytest's test database.

An assisted expert approves the critique when they agree with the critic's verdict and rejects
it ("other", with their verdict) when not; a blind expert labels the item.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from oversight_panel import Served, SimItem

from alignment_core.oversight import ExpertVerdict
from annotator.models import (
    AttackQuery,
    Critique,
    ItemState,
    LearnerVersion,
    Response,
    ReviewAction,
    ReviewItem,
    Role,
)
from annotator.selectors.oversight import oversight_inputs
from annotator.services.oversight import review_item_gold_set
from annotator.services.projects import membership_set, project_create
from annotator.services.review import review_adjudicate, review_claim_next, review_submit

# A revision for the critique, so that approving an unsafe or over-refusal verdict has an answer.
REVISION = "I can't help with that, but here is a safe alternative."


class DjangoBackend:
    """The review queue of one project in the app's database (see the module docstring).

    Items are created in the simulation's order with equal priority, so the queue serves them in
    that order (priority, then id), as `CoreBackend` does.
    """

    def __init__(self, items: list[SimItem], gold_items: list[SimItem], expert_ids: list[str], *,
                 overlap: int,
                 seed: int, blind_share: float, gold_share: float,
                 name: str = "Oversight simulation") -> None:
        self.project = project_create(name=name, reviews_per_item=overlap)
        self.project.blind_share, self.project.gold_share = blind_share, gold_share
        self.project.oversight_seed = seed
        self.project.save(update_fields=["blind_share", "gold_share", "oversight_seed"])
        users = get_user_model().objects
        self.users = {e: users.create_user(username=f"{self.project.slug}-{e}") for e in expert_ids}
        for user in self.users.values():
            membership_set(project=self.project, user=user, role=Role.EXPERT)
        admin = users.create_user(username=f"{self.project.slug}-admin")
        membership_set(project=self.project, user=admin, role=Role.ADMIN)
        learner = LearnerVersion.objects.get(project=self.project)
        self.sim_id: dict[int, str] = {}
        with transaction.atomic():
            regular = self._create(items, learner, ItemState.PENDING)
            gold = self._create(gold_items, learner, ItemState.DISAGREEMENT)
        # Gold items the way an admin makes them: settle the disagreement, then mark it gold.
        for item, sim in zip(gold, gold_items):
            review_adjudicate(item=item, admin=admin, final_verdict=sim.truth)
            review_item_gold_set(item=item, admin=admin, gold=True)
        self.gold = {sim.item_id: sim.truth for sim in gold_items}
        self.n_regular = len(regular)
        self.open: dict[str, ReviewItem] = {}

    def _create(self, sims: list[SimItem], learner: LearnerVersion, state: str) -> list[ReviewItem]:
        attacks = AttackQuery.objects.bulk_create(
            AttackQuery(project=self.project, text=f"Simulated request {s.item_id}",
                        strategy="direct", category="simulated", seq=k)
            for k, s in enumerate(sims))
        responses = Response.objects.bulk_create(
            Response(attack=a, learner_version=learner, text=f"Simulated answer {s.item_id}")
            for a, s in zip(attacks, sims))
        critiques = Critique.objects.bulk_create(
            Critique(response=r, critic_name="simulated", verdict=s.critic_verdict,
                     category="simulated", severity=2, confidence=0.5,
                     explanation="Simulated critique.", suggested_revision=REVISION)
            for r, s in zip(responses, sims))
        items = ReviewItem.objects.bulk_create(
            ReviewItem(project=self.project, critique=c, priority=0.0, state=state,
                       reviews_required=self.project.reviews_per_item)
            for c in critiques)
        self.sim_id.update({item.pk: s.item_id for item, s in zip(items, sims)})
        return items

    def next_item(self, expert_id: str) -> Served | None:
        item = review_claim_next(project=self.project, expert=self.users[expert_id])
        if item is None:
            return None
        self.open[expert_id] = item
        shown = None if item.served_as.blind else item.critique.verdict
        return Served(self.sim_id[item.pk], shown)

    def submit(self, expert_id: str, item_id: str, verdict: str, seconds: float) -> None:
        item = self.open.pop(expert_id)
        assert self.sim_id[item.pk] == item_id, "a decision for an item that was not served"
        if item.served_as.blind:
            action = ReviewAction.LABEL
        elif verdict == item.critique.verdict:
            action = ReviewAction.APPROVE
        else:
            action = ReviewAction.REJECT
        review_submit(item=item, expert=self.users[expert_id], action=action,
                      final_verdict=None if action == ReviewAction.APPROVE else verdict,
                      reason_code="other" if action == ReviewAction.REJECT else "",
                      seconds_spent=seconds)

    def results(self) -> tuple[list[ExpertVerdict], dict[str, str]]:
        """The verdicts as the reliability job reads them, under the simulation's ids."""
        names = {str(user.pk): expert_id for expert_id, user in self.users.items()}
        inputs = oversight_inputs(project=self.project)
        verdicts = [ExpertVerdict(item_id=self.sim_id[int(v.item_id)],
                                  expert_id=names[v.expert_id], verdict=v.verdict, blind=v.blind,
                                  seconds=v.seconds, critic_verdict=v.critic_verdict)
                    for v in inputs.verdicts]
        return verdicts, dict(self.gold)
