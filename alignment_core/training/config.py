"""The plain dataclasses that go into and come out of a training run.

The Django side builds a `TrainConfig` from a form, passes `PreferencePair`s and `SFTExample`s taken
from a frozen dataset snapshot, and stores the `StepReport`s and the `TrainResult` it gets back.
Nothing here imports torch, so these types are cheap to import anywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from .settings import group, setting

# A prompt is either one user turn (a string) or a chat history (a list of {"role", "content"}
# dicts ending with a user turn), the same two shapes `Learner.generate` accepts.
Prompt = str | list[dict[str, str]]
Method = Literal["sft", "dpo", "sft_dpo"]
METHODS: tuple[str, ...] = get_args(Method)
METHOD_LABELS = {"sft": "SFT", "dpo": "DPO", "sft_dpo": "SFT then DPO"}
# The loss of the preference phase ("dpo" in `Method`), named as TRL's `loss_type`s: "sigmoid" is
# DPO (with `label_smoothing` > 0, conservative DPO), "robust" robust DPO, "ipo" IPO, "hinge" the
# hinge loss (SLiC), and "kto" KTO, which learns from point-wise labels (see `PointwiseExample`).
Objective = Literal["sigmoid", "robust", "ipo", "hinge", "kto"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
SMOOTHED_OBJECTIVES: tuple[str, ...] = ("sigmoid", "robust")  # those that use label_smoothing


class Cancelled(Exception):
    """Raised when `should_cancel()` returned true; a checkpoint was written just before."""


@dataclass
class LoraSettings:
    """Which weights get a LoRA adapter and how big it is (peft's `LoraConfig`)."""

    r: int = setting(16, label="LoRA r", minimum=1, maximum=256, help="LoRA rank")
    alpha: int = setting(32, label="LoRA alpha", minimum=1, maximum=1024,
                         help="LoRA scaling numerator (the update is scaled by alpha / r)")
    dropout: float = setting(0.05, label="LoRA dropout", minimum=0, maximum=1, below=True,
                             help="dropout on the LoRA input")
    target_modules: tuple[str, ...] = setting(
        default_factory=lambda: ("q_proj", "k_proj", "v_proj", "o_proj"), name="target_modules",
        help="comma-separated module names", pattern=r"[A-Za-z_][A-Za-z0-9_.]*",
        pattern_hint="Name at least one module, e.g. q_proj, v_proj (letters, digits, _ and .).")


@dataclass
class TrainConfig:
    """Every setting of a run; defaults suit the bundled SmolLM2-135M-Instruct on a CPU.

    `batch_size` is the number of examples (SFT) or preference pairs (DPO) per optimizer step on
    each process; with `accelerate launch` over N processes one step sees N times as many.

    Fields declared with `setting(...)` are the user-facing settings: the web form, the REST API,
    `manage.py train` and `python -m alignment_core.training` all derive their fields, defaults,
    help texts and checks from these declarations (alignment_core.training.settings). To add one,
    declare it here with `setting(default, help=..., minimum=..., maximum=...)` (scope="host" for
    a machine setting that only the standalone CLI offers), use it in the trainer, and test it.
    """

    method: Method = setting("dpo", help="SFT, DPO, or SFT then DPO")
    lora: LoraSettings = group(LoraSettings, prefix="lora_")
    # One learning rate for the whole run, or None to use the per-phase defaults below.
    learning_rate: float | None = setting(
        None, flag="--lr", minimum=0, maximum=0.1, above=True,
        help="one rate for every phase; empty: 2e-4 for SFT, 5e-5 for DPO")
    sft_learning_rate: float = 2e-4
    dpo_learning_rate: float = 5e-5
    epochs: int = setting(1, minimum=1, maximum=100, help="passes over the training split")
    batch_size: int = setting(4, minimum=1, maximum=512,
                              help="examples or pairs per optimizer step (per process)")
    # Longer examples lose the prompt's start, then the response's end.
    max_length: int = setting(384, minimum=16, maximum=32768, help="prompt + response tokens")
    beta: float = setting(0.1, minimum=0, maximum=10, above=True,
                          help="DPO: how far the model may move from the reference")
    objective: Objective = setting(
        "sigmoid", help="the preference phase's loss: sigmoid (DPO; conservative DPO with label "
        "smoothing), robust, ipo, hinge, or kto (point-wise labels)")
    label_smoothing: float = setting(
        0.0, minimum=0, maximum=0.5, below=True,
        help="assumed share of flipped labels (sigmoid and robust); the audited disagreement "
        "rate is a good estimate")
    weight_examples: bool = setting(
        False, help="scale each example's loss by its label weight (source x confidence)")
    seed: int = setting(0, help="seed for the adapter's initialisation and the data order")
    checkpoint_every: int = setting(10, minimum=0,
                                    help="optimizer steps between checkpoints (0: only on cancel)")
    max_steps: int | None = setting(None, minimum=1, help="optional cap on the optimizer steps of each phase")
    warmup_ratio: float = (
        0.0  # linear warm-up over this fraction of a phase, then linear decay to 0
    )
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    device: str | None = setting(None, scope="host",
                                 help="cpu to force the CPU (default: CUDA when present)")
    mixed_precision: str = setting("no", scope="host", choices=("no", "bf16", "fp16"),
                                   help="accelerate's mixed precision (GPUs)")
    num_threads: int | None = setting(None, scope="host", flag="--threads", minimum=1,
                                      help="CPU threads for torch (default: all cores)")
    # Free-form facts about the run that end up in the model card and superalign.json,
    # e.g. {"snapshot_hash": "...", "snapshot_id": 3, "parent_adapter": None}.
    meta: dict[str, Any] = field(default_factory=dict)

    def lr_for(self, phase: str) -> float:
        """The peak learning rate of one phase ("sft" or "dpo")."""
        if self.learning_rate is not None:
            return self.learning_rate
        return self.sft_learning_rate if phase == "sft" else self.dpo_learning_rate

    def phases(self) -> list[str]:
        """The phases this method runs, in order (after checking the settings, see `validate`)."""
        self.validate()
        return ["sft", "dpo"] if self.method == "sft_dpo" else [self.method]

    def validate(self) -> None:
        """Raise ValueError with a plain message for a setting no run can use."""
        if self.method not in METHODS:
            raise ValueError(f"Unknown training method {self.method!r}; expected one of {METHODS}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"Unknown objective {self.objective!r}; expected one of {OBJECTIVES}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(
                f"Label smoothing must lie in [0, 0.5), got {self.label_smoothing}: it is the share "
                "of labels assumed flipped, and at 0.5 the labels carry no information"
            )
        if self.label_smoothing and self.objective not in SMOOTHED_OBJECTIVES:
            raise ValueError(
                f"Label smoothing applies to the {' and '.join(SMOOTHED_OBJECTIVES)} objectives, "
                f"not to {self.objective!r}; set it to 0"
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lora"]["target_modules"] = list(self.lora.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from `to_dict()` output (e.g. a JSON field); unknown keys are an error."""
        data = dict(data)
        lora = dict(data.pop("lora", {}) or {})
        if "target_modules" in lora:
            lora["target_modules"] = tuple(lora["target_modules"])
        return cls(lora=LoraSettings(**lora), **data)


@dataclass
class PreferencePair:
    """One DPO example: the response an expert preferred and the learner's original one.

    `weight` scales the pair's loss when `TrainConfig.weight_examples` is on (see
    `label_sources.example_weight`); 1 is a label taken as certain.
    """

    prompt: Prompt
    chosen: str
    rejected: str
    weight: float = 1.0


@dataclass
class PointwiseExample:
    """One KTO example: a response labelled desirable (approved) or undesirable, with no pair.

    An approved or corrected answer is desirable; the learner's rejected original is undesirable.
    The "kto" objective trains on these and on both halves of every preference pair.
    """

    prompt: Prompt
    response: str
    desirable: bool
    weight: float = 1.0


@dataclass
class SFTExample:
    """One supervised example: the loss covers only the response tokens."""

    prompt: Prompt
    response: str


@dataclass
class StepReport:
    """What the progress callback receives after every optimizer step."""

    step: int  # 1-based, counted over all phases
    total_steps: int
    epoch: int  # 1-based, within the phase
    loss: float
    reward_accuracy: float | None  # DPO: share of pairs whose chosen reward beats the rejected one
    reward_margin: float | None  # DPO: mean (chosen reward - rejected reward)
    tokens_per_s: float
    elapsed_s: float
    eta_s: float
    phase: str  # "sft" or "dpo"
    learning_rate: float = 0.0


@dataclass
class TrainResult:
    """The finished adapter and how the run went."""

    adapter_dir: Path
    steps: int
    history: list[StepReport]
    metrics: dict[str, float]
