"""LoRA fine-tuning of the learner: SFT, DPO, or SFT then DPO (peft + accelerate).

    from alignment_core.training import TrainConfig, PreferencePair, train
    result = train(TrainConfig(method="dpo"), model_dir, pairs, [], output_dir, checkpoint_dir)

`python -m alignment_core.training --pairs pairs.jsonl --method dpo --out DIR` does the same from
a shell, and `accelerate launch -m alignment_core.training ...` spreads it over several GPUs.
"""

from .config import (
    METHODS,
    OBJECTIVES,
    Cancelled,
    LoraSettings,
    PointwiseExample,
    PreferencePair,
    SFTExample,
    StepReport,
    TrainConfig,
    TrainResult,
)


def train(*args, **kwargs):
    """Run a fine-tune (see `trainer.train`). Imported on first call: importing the config types
    must stay cheap, because the web server imports them and never trains."""
    from .trainer import train as _train

    return _train(*args, **kwargs)

__all__ = [
    "METHODS",
    "OBJECTIVES",
    "Cancelled",
    "LoraSettings",
    "PointwiseExample",
    "PreferencePair",
    "SFTExample",
    "StepReport",
    "TrainConfig",
    "TrainResult",
    "train",
]
