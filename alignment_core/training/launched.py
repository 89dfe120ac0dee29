"""What each process of `launch.train_processes` runs: `train()` on a prepared folder.

    accelerate launch ... -m alignment_core.training.launched FOLDER

FOLDER holds `run.json` (the TrainConfig, the paths, the examples' files) written by
`train_processes`. The main process appends to FOLDER/events.jsonl one JSON line per optimizer
step, per log line and for the outcome; every process stops with a checkpoint after the step
during which FOLDER/cancel appears (the trainer makes them agree on the step).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import record

from .config import (
    Cancelled,
    PointwiseExample,
    PreferencePair,
    SFTExample,
    StepReport,
    TrainConfig,
)


def _rows(folder: Path, name: str | None, kind: type) -> list:
    if name is None:
        return []
    with open(folder / name, encoding="utf-8") as handle:
        return [kind(**json.loads(line)) for line in handle if line.strip()]


@record  # a failing process writes its traceback where the launcher's summary shows it
def main(folder: Path) -> None:
    from .trainer import train

    run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    main_process = os.environ.get("RANK", "0") == "0"

    def event(kind: str, **data: Any) -> None:
        if main_process:
            with open(folder / "events.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"kind": kind, **data}) + "\n")

    def progress(report: StepReport) -> None:
        event("step", report=asdict(report))

    files = run["files"]
    try:
        result = train(
            TrainConfig.from_dict(run["config"]),
            run["model_dir"],
            _rows(folder, files.get("pairs"), PreferencePair),
            _rows(folder, files.get("sft"), SFTExample),
            run["output_dir"],
            run["checkpoint_dir"],
            progress=progress,
            should_cancel=(folder / "cancel").exists,
            val_pairs=_rows(folder, files.get("val_pairs"), PreferencePair),
            val_sft=_rows(folder, files.get("val_sft"), SFTExample),
            log=lambda message: event("log", message=message),
            reference_cache=run.get("reference_cache"),
            pointwise=_rows(folder, files.get("pointwise"), PointwiseExample),
        )
    except Cancelled as error:
        event("cancelled", message=str(error))
        return
    event("result", adapter_dir=str(result.adapter_dir), steps=result.steps,
          metrics=result.metrics, history=[asdict(report) for report in result.history])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
