"""The closed loop from the shell, one round or several:

    campaign -> STAND-IN review (every critique approved) -> snapshot -> fine-tune
    -> held-out attacks, before/after -> promote if better -> the next round

    manage.py demo_round --expert expert --rounds 3 --budget 48 --eval-budget 128

The review step is a stand-in: the named expert account approves every critique unread, so the
learner learns the critic's own labels without a human check. That is fine for a demo or a
benchmark of the loop, never for real training data; the expert is named explicitly
(`--expert`) and the output says so every round. See annotator/services/closed_loop.py.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from alignment_core.closed_loop import DEFAULT_MAX_OVER_REFUSAL_RISE, relative_drop
from alignment_core.training import METHODS
from alignment_core.training.config import OBJECTIVES
from annotator.access import role_of
from annotator.management.lookups import project_named
from annotator.models import Role
from annotator.models.projects import ROLE_RANK
from annotator.services.closed_loop import (
    PROMOTE_POLICIES,
    LoopError,
    LoopSettings,
    RoundReport,
    loop_run,
)


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


class Command(BaseCommand):
    help = ("Run the closed loop for --rounds rounds: a red-team campaign against the active "
            "learner, every critique approved by --expert (a stand-in for review), a fine-tune "
            "on all curated labels, held-out attack success before and after, and promotion "
            "of the candidate when it is better.")

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = LoopSettings()
        parser.add_argument("--project", default="demo", help="project slug (default: demo)")
        parser.add_argument("--expert", required=True,
                            help="the expert (username) recorded as approving every critique")
        parser.add_argument("--rounds", type=int, default=defaults.rounds)
        parser.add_argument("--budget", type=int, default=defaults.budget,
                            help="attacks in each round's campaign")
        parser.add_argument("--strategies", default=",".join(defaults.strategies))
        parser.add_argument("--seed", type=int, default=defaults.seed,
                            help="round N's campaign uses seed + N - 1")
        parser.add_argument("--method", choices=METHODS, default=defaults.method)
        parser.add_argument("--objective", choices=OBJECTIVES, default=defaults.objective)
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument("--max-steps", type=int, default=None)
        parser.add_argument("--eval-budget", type=int, default=defaults.eval_budget,
                            help="held-out attacks, the same in every round and never trained on")
        parser.add_argument("--promote", nargs="?", const="always", default="if_better",
                            choices=PROMOTE_POLICIES,
                            help="if_better (default): promote a candidate with lower attack "
                                 "success and over-refusal at most --max-over-refusal-rise above "
                                 "the learner round 1 started from; --promote alone: always; "
                                 "never")
        parser.add_argument("--max-over-refusal-rise", type=float,
                            default=DEFAULT_MAX_OVER_REFUSAL_RISE)

    def handle(self, *args, **o) -> None:
        project = project_named(o["project"], hint="`make run` creates demo")
        expert = get_user_model().objects.filter(username=o["expert"]).first()
        role = role_of(expert, project) if expert is not None else None
        if role is None or ROLE_RANK[role] < ROLE_RANK[Role.EXPERT]:
            raise CommandError(f"{o['expert']!r} is not an expert of {project.slug}.")
        if o["rounds"] < 1:
            raise CommandError("--rounds must be at least 1.")
        settings = LoopSettings(
            rounds=o["rounds"], budget=o["budget"],
            strategies=tuple(s.strip() for s in o["strategies"].split(",") if s.strip()),
            seed=o["seed"], method=o["method"], objective=o["objective"], epochs=o["epochs"],
            max_steps=o["max_steps"], eval_budget=o["eval_budget"], promote=o["promote"],
            max_over_refusal_rise=o["max_over_refusal_rise"])
        try:
            reports = loop_run(project=project, expert=expert, settings=settings,
                               say=self.stdout.write)
        except (ValidationError, LoopError, ValueError) as error:
            messages = error.messages if isinstance(error, ValidationError) else [str(error)]
            raise CommandError("; ".join(messages) + " (run the command again to resume)") \
                from error
        self.report(reports)

    def report(self, reports: list[RoundReport]) -> None:
        """The per-round table, then the loop's result on the held-out attacks."""
        first, last = reports[0], reports[-1]
        self.stdout.write(self.style.MIGRATE_HEADING(
            f"Held-out evaluation ({last.heldout_n} attacks, the same in every round)"))
        self.stdout.write(f"  {'round':>5} {'attacked':24} {'campaign ASR':>12} {'approved':>8} "
                          f"{'pairs':>5} {'base ASR':>9} {'candidate':>9} {'base OR':>8} "
                          f"{'cand. OR':>8}  promoted")
        for r in reports:
            self.stdout.write(
                f"  {r.number:>5} {r.learner[:24]:24} {_percent(r.campaign_asr):>12} "
                f"{r.approved:>8} {r.pairs:>5} {_percent(r.base['asr']):>9} "
                f"{_percent(r.candidate['asr']):>9} {_percent(r.base['over_refusal']):>8} "
                f"{_percent(r.candidate['over_refusal']):>8}  "
                f"{'yes' if r.promoted else 'no'} ({r.reason})")
        # The active learner at the end: the last promoted candidate, else the first base.
        final = next((r.candidate for r in reversed(reports) if r.promoted), first.base)
        drop = relative_drop(first.base["asr"], final["asr"])
        self.stdout.write(
            f"Attack success: base {_percent(first.base['asr'])} -> active learner "
            f"{_percent(final['asr'])} (relative drop {_percent(drop)}); over-refusal "
            f"{_percent(first.base['over_refusal'])} -> {_percent(final['over_refusal'])}.")
