"""Which item an expert is served next, and how: blind, or a gold item put in unannounced.

The choice is `alignment_core.oversight.plan_serving`, a stateless function of the project's
seed and shares, the expert, their position and the queue head; this module gives it the facts
from the database:

- position: the expert's live (not undone) reviews in the project, skips and gold answers
  included. It advances once per decision and steps back on an undo, so a reload never moves it
  and an undone gold slot comes again. Counted as the expert's closed (decided or skipped)
  assignments in the project, which is the same number: every live decision closes its
  assignment and an undo reopens it; the assignment table is the cheaper one to count.
- gold candidates: the project's gold items this expert has never reviewed and holds no
  assignment for (other than an abandoned gold probe of their own, served again), so nobody gets
  an item twice and the unique (item, expert) assignment stays unique.

Both are read only when the project serves gold (gold_share > 0), and the candidates only when a
gold slot comes up, so a project without gold costs the queue no query at all.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection
from django.db.models import Exists, OuterRef

from alignment_core.oversight import plan_serving
from annotator.models import Project, Review, ReviewAssignment, ReviewItem, ServedAs
from annotator.models.reviews import AssignmentState


def serving_position(*, project: Project, expert) -> int:
    """How many decisions the expert has standing in the project (skips included).

    SQL for the reason annotator.services.review gives: it runs on every claim of a project that
    serves gold, and building the ORM query cost more CPU than running it.
    """
    sql = f"""
        SELECT COUNT(*) FROM {ReviewAssignment._meta.db_table} a
        JOIN {ReviewItem._meta.db_table} i ON i.id = a.item_id
        WHERE a.expert_id = %s AND a.state IN (%s, %s) AND i.project_id = %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [expert.pk, AssignmentState.DECIDED.value,
                             AssignmentState.SKIPPED.value, project.pk])
        return cursor.fetchone()[0]


def gold_candidates(*, project: Project, expert) -> Iterator[str]:
    """The ids (as text, the sampler's item ids) of the gold items this expert may be served.
    A generator: the query runs only if the sampler looks at the candidates (a gold slot)."""
    taken = (ReviewAssignment.objects.filter(item=OuterRef("pk"), expert=expert)
             .exclude(state=AssignmentState.OPEN, gold_probe=True))
    reviewed = Review.objects.filter(item=OuterRef("pk"), expert=expert)
    items = (ReviewItem.objects.filter(project=project, is_gold=True)
             .exclude(Exists(taken)).exclude(Exists(reviewed)).values_list("id", flat=True))
    for pk in items:
        yield str(pk)


def serving_plan(*, project: Project, expert, head: int | None) -> tuple[int, ServedAs] | None:
    """The item to serve (the queue head `head`, or a gold item in its place) and its mode;
    None when there is neither."""
    position = serving_position(project=project, expert=expert) if project.gold_share > 0 else 0
    serving = plan_serving(
        seed=project.oversight_seed, expert_id=str(expert.pk), position=position,
        next_item_id=None if head is None else str(head),
        gold_candidates=gold_candidates(project=project, expert=expert),
        blind_share=project.blind_share, gold_share=project.gold_share)
    if serving is None:
        return None
    return int(serving.item_id), ServedAs(blind=serving.blind, gold_probe=serving.gold)
