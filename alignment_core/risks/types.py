"""The plain data of risk discovery: attacks in, clusters out, both JSON-able.

The Django side builds `RiskAttack`s from its rows (attack, response, critique, reviews), calls
`discover`, and stores each `RiskCluster` as it is (`to_dict`); nothing here knows about models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

UNSAFE = "unsafe"  # the critic's verdict for a successful attack (alignment_core.critic.VERDICTS)
CONFIRMED_WEIGHT = 3.0  # an unsafe verdict an expert confirmed counts three critic-only ones
CRITIC_WEIGHT = 1.0


def attack_weight(verdict: str, confirmed: bool) -> float:
    """How much one attack counts: 0 unless its final verdict is unsafe; expert-confirmed most.

    `verdict` is the final one (the expert's when reviewed, else the critic's), so an attack an
    expert overturned to safe weighs nothing, whatever the critic said.
    """
    if verdict != UNSAFE:
        return 0.0
    return CONFIRMED_WEIGHT if confirmed else CRITIC_WEIGHT


@dataclass(frozen=True)
class RiskAttack:
    """One attack with the learner's answer and how it was judged."""

    id: str  # the caller's key (Django: the AttackQuery or Response pk as a string)
    attack: str  # the attack text as sent (frames and encodings are undone by discovery)
    answer: str  # the learner's answer
    category: str | None  # the attacker's category, or None (imports, LM-written attacks)
    verdict: str  # the final verdict: the expert's when reviewed, else the critic's
    severity: int  # 0..4, from the critique (or the expert)
    weight: float = CRITIC_WEIGHT  # see attack_weight; 0 leaves the attack out of the clusters

    @property
    def successful(self) -> bool:
        return self.verdict == UNSAFE and self.weight > 0


@dataclass(frozen=True)
class DiscoveryConfig:
    """The knobs of `discover`; the defaults are what benchmarks/risk_discovery.py measures."""

    min_cluster_size: int | None = None  # HDBSCAN's; None: 0.5% of the attacks, at least 5
    min_samples: int = 5  # HDBSCAN's density smoothing
    merge_similarity: float = 0.6  # centroid cosine at which two groups are about one thing
    assign_similarity: float = 0.4  # centroid cosine at which a noise attack joins a group
    answer_weight: float = 0.5  # the answer's share of an attack's vector, the request's is 1
    answer_words: int = 24  # answers are cut to this many words before embedding (speed)
    reduce_to: int = 32  # PCA dimensions HDBSCAN works in
    keywords: int = 8  # c-TF-IDF keywords kept per cluster
    examples: int = 5  # example attack ids per cluster, most representative first
    seed: int = 0  # the PCA solver's random state (the only randomness)


@dataclass
class RiskCluster:
    """One group of successful attacks that look alike, with why it may be a new risk."""

    id: str  # a hash of the member ids: the same members give the same id on every run
    name: str  # short, from the keywords (or a language model's words that passed a check)
    keywords: list[str]  # c-TF-IDF keywords, best first
    member_ids: list[str]  # most representative first (weight, then closeness to the centre)
    size: int  # how many attacks
    weight: float  # summed attack weights (expert-confirmed ones count more)
    severity: float  # weighted mean severity, 0..4
    novelty: float  # 0..1: 1 - cosine similarity to the nearest known category's centroid
    nearest_category: str | None  # that category (None when no category is known)
    score: float  # novelty x weight x severity / 4: the Risks page's order
    position: tuple[float, float]  # the centre on the 2-D map
    example_ids: list[str]  # a few members with distinct requests, for the page
    centroid: list[float] = field(default_factory=list)  # request-space unit vector (matching)
    filed_under: dict[str, int] = field(default_factory=dict)  # attacker category -> members
    # ("" for attacks without one), most first
    named_by: str = "template"  # "template" or "model"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RiskCluster:
        data = dict(data)
        data["position"] = tuple(data["position"])
        return cls(**data)


@dataclass
class MapPoint:
    """One successful attack on the 2-D map; `cluster_id` is None for HDBSCAN's noise."""

    id: str
    x: float
    y: float
    cluster_id: str | None


@dataclass
class Discovery:
    """Everything one run of `discover` found, ranked by score (highest first)."""

    clusters: list[RiskCluster]
    points: list[MapPoint]
    considered: int  # successful attacks that were clustered
    noise: int  # of those, how many fell in no cluster
    config: DiscoveryConfig

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Discovery:
        return cls(clusters=[RiskCluster.from_dict(c) for c in data["clusters"]],
                   points=[MapPoint(**p) for p in data["points"]],
                   considered=data["considered"], noise=data["noise"],
                   config=DiscoveryConfig(**data["config"]))
