"""Risk discovery: cluster successful attacks, name them, and rank what no category explains.

`discover(attacks)` takes `RiskAttack`s and returns a `Discovery` whose `RiskCluster`s are
ranked by novelty x weight x severity; `adopt_cluster` turns one into seed behaviours for the
attacker; `carry_over` matches a new run's clusters to an earlier run's (to keep dismissals).
"""

from alignment_core.risks.adopt import Adoption, adopt_cluster
from alignment_core.risks.discover import discover
from alignment_core.risks.frames import readable, request_core
from alignment_core.risks.keywords import class_tfidf, cluster_keywords
from alignment_core.risks.naming import Generate, accept_name, learner_generate, template_name
from alignment_core.risks.novelty import known_from_behaviours
from alignment_core.risks.tracking import carry_over
from alignment_core.risks.types import (
    CONFIRMED_WEIGHT,
    Discovery,
    DiscoveryConfig,
    MapPoint,
    RiskAttack,
    RiskCluster,
    attack_weight,
)

__all__ = [
    "CONFIRMED_WEIGHT", "Adoption", "Discovery", "DiscoveryConfig", "Generate", "MapPoint", "RiskAttack",
    "RiskCluster", "accept_name", "adopt_cluster", "attack_weight", "carry_over", "class_tfidf", "cluster_keywords", "discover",
    "known_from_behaviours", "learner_generate", "readable", "request_core", "template_name",
]
