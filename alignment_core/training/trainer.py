"""The LoRA training loop: SFT, DPO, or SFT then DPO, on one CPU, one GPU or many (accelerate).

Read top to bottom, `train()` does:

1. set up accelerate (device, processes) and seed every generator;
2. load the base model, add a fresh LoRA adapter (peft), tokenize the data;
3. resume from the last checkpoint in `checkpoint_dir` if there is one;
4. for each phase (SFT, DPO): for DPO, score every pair once with the reference model (it never
   changes, so one pass replaces one extra forward per step; the pairs of step 1 are scored by
   step 1's own forward, because the policy has not moved yet, and base-model scores of earlier
   runs come from the reference cache when one is given); then run the optimizer steps,
   reporting progress, checkpointing every N steps and stopping with a checkpoint when cancelled;
5. measure validation loss and DPO reward accuracy on the held-out examples;
6. write the adapter atomically with its model card, and drop the checkpoint.

The DPO reference is the model the phase starts from: the base model (adapter disabled) for
plain DPO, and the SFT-trained model for SFT then DPO, as in the DPO paper's recipe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from .checkpoint import (
    CHECKPOINT_FORMAT,
    checkpoint_path,
    load_checkpoint,
    rng_state,
    run_fingerprint,
    save_checkpoint,
    set_rng_state,
    write_adapter,
)
from .config import (
    Cancelled,
    PointwiseExample,
    PreferencePair,
    SFTExample,
    StepReport,
    TrainConfig,
    TrainResult,
)
from .data import collate_pairs, collate_sft, encode_pairs, encode_sft, epoch_order
from .distributed import check_world, local_share, step_weight, threads_per_process
from .losses import ResponseScorer, sft_loss
from .preference import prepare, step_loss
from .reference_cache import ReferenceCache, model_key
from .scoring import dpo_reference, fill_from_step_one, final_metrics


def import_training_libraries() -> None:
    """Import accelerate, peft and transformers (peft alone takes seconds on a small CPU).

    `train()` imports them on first use, so that importing this module stays cheap; a process
    that will train can call this early, e.g. a worker at start-up or a benchmark before timing.
    """
    import accelerate  # noqa: F401
    import peft  # noqa: F401
    import transformers  # noqa: F401


def train(
    config: TrainConfig,
    model_dir: Path | str,
    pairs: Sequence[PreferencePair],
    sft: Sequence[SFTExample],
    output_dir: Path | str,
    checkpoint_dir: Path | str,
    progress: Callable[[StepReport], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    val_pairs: Sequence[PreferencePair] = (),
    val_sft: Sequence[SFTExample] = (),
    log: Callable[[str], None] | None = None,
    reference_cache: Path | str | None = None,
    pointwise: Sequence[PointwiseExample] = (),
) -> TrainResult:
    """Fine-tune a LoRA adapter on `model_dir` and write it to `output_dir` (which must not exist).

    SFT uses `sft`, or the (prompt, chosen) of `pairs` when `sft` is empty. If `checkpoint_dir`
    holds a checkpoint of the same run (same settings and data), training resumes from it.
    Raises `Cancelled` after writing a checkpoint when `should_cancel()` returns true.
    `reference_cache` names a SQLite file that keeps base-model scores of pairs between runs
    (see `reference_cache.py`); None scores every pair afresh.
    The preference phase optimises `config.objective`; `pointwise` examples (KTO only) join the
    pairs there.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict
    from transformers import get_linear_schedule_with_warmup

    from ..model_loader import load_model

    started = time.perf_counter()
    model_dir, output_dir, checkpoint_dir = Path(model_dir), Path(output_dir), Path(checkpoint_dir)
    phases = config.phases()
    pairs, sft, val_pairs, val_sft = list(pairs), list(sft), list(val_pairs), list(val_sft)
    pointwise = list(pointwise)
    if "sft" in phases and not sft:
        sft = [SFTExample(prompt=p.prompt, response=p.chosen) for p in pairs]
        sft += [SFTExample(prompt=e.prompt, response=e.response) for e in pointwise if e.desirable]
    if "sft" in phases and not sft:
        raise ValueError("SFT needs SFT examples or preference pairs")
    if "dpo" in phases and not pairs and not pointwise:
        raise ValueError("DPO needs preference pairs (or, for KTO, labelled examples)")
    if output_dir.exists():
        raise FileExistsError(f"Adapter directory {output_dir} already exists")

    # 1. accelerate decides the device and the process layout (`accelerate launch` sets it up).
    accelerator = Accelerator(cpu=config.device == "cpu", mixed_precision=config.mixed_precision)
    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    check_world(world)
    say = log if log is not None and accelerator.is_main_process else (lambda message: None)
    previous_threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads_per_process(config.num_threads, world))
    set_seed(config.seed)
    cache = None

    try:
        # 2. The base model with a fresh LoRA adapter, and the tokenized data.
        loaded = load_model(model_dir, device="cpu", trainable=True)
        tokenizer = loaded.tokenizer
        pad_id = tokenizer.pad_token_id
        lora = LoraConfig(
            r=config.lora.r,
            lora_alpha=config.lora.alpha,
            lora_dropout=config.lora.dropout,
            target_modules=list(config.lora.target_modules),
            task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(loaded.model, lora)
        encoded_sft = encode_sft(tokenizer, sft, config.max_length) if "sft" in phases else []
        # The preference phase's rows: pairs, or KTO's examples with their mismatched responses.
        preference = prepare(tokenizer, config, pairs, pointwise) if "dpo" in phases else None
        encoded_pairs = preference.rows if preference is not None else []
        encoded_val_sft = encode_sft(tokenizer, val_sft, config.max_length)
        encoded_val_pairs = encode_pairs(tokenizer, val_pairs, config.max_length)
        fingerprint = run_fingerprint(
            config,
            model_dir,
            {
                "sft": [asdict(e) for e in encoded_sft],
                "pairs": [asdict(p) for p in encoded_pairs],
                "preference": preference.fingerprint() if preference is not None else None,
                "world": world,
            },
        )
        sizes = {"sft": len(encoded_sft), "dpo": len(encoded_pairs)}
        per_epoch = {name: math.ceil(sizes[name] / (config.batch_size * world)) for name in phases}
        phase_steps = {name: per_epoch[name] * config.epochs for name in phases}
        if config.max_steps is not None:
            phase_steps = {name: min(n, config.max_steps) for name, n in phase_steps.items()}
        total_steps = sum(phase_steps.values())

        # 3. Resume from the last checkpoint of this very run, if any.
        resume = load_checkpoint(checkpoint_dir)
        history: list[StepReport] = []
        elapsed_before = 0.0
        if resume is not None:
            if (
                resume.get("format") != CHECKPOINT_FORMAT
                or resume.get("fingerprint") != fingerprint
            ):
                raise ValueError(
                    f"The checkpoint in {checkpoint_dir} belongs to a different run (other settings or "
                    "data); delete it to start afresh"
                )
            set_peft_model_state_dict(peft_model, resume["lora"])
            history = [StepReport(**report) for report in resume["history"]]
            elapsed_before = resume["elapsed_s"]
            say(f"Resuming from the checkpoint at step {resume['step']}/{total_steps}")

        scorer = accelerator.prepare(ResponseScorer(peft_model))
        scorer.train()
        core = accelerator.unwrap_model(scorer)  # the ResponseScorer itself, for no-grad passes
        trainable = [p for p in scorer.parameters() if p.requires_grad]
        say(
            f"Training {sum(p.numel() for p in trainable):,} LoRA parameters on {device} "
            f"({world} process{'es' if world > 1 else ''}); {total_steps} steps: "
            + ", ".join(f"{name} {phase_steps[name]}" for name in phases)
        )

        reference = {"train": None, "val": None}
        if reference_cache is not None:
            key = model_key(model_dir, config.mixed_precision, device.type)
            cache = ReferenceCache(reference_cache, key)
        step = 0  # optimizer steps done over all phases
        losses: dict[str, float] = {}
        session_started, session_steps = time.perf_counter(), 0
        for phase_index, phase in enumerate(phases):
            n_steps = phase_steps[phase]
            if resume is not None and phase_index < resume["phase_index"]:
                step += n_steps
                continue
            resuming_here = resume is not None and phase_index == resume["phase_index"]
            lr = config.lr_for(phase)
            optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=config.weight_decay)
            scheduler = get_linear_schedule_with_warmup(
                optimizer, round(config.warmup_ratio * n_steps), n_steps
            )
            # Only the optimizer goes through accelerate: a prepared scheduler would advance once per
            # process on every step, and our schedule counts optimizer steps.
            optimizer = accelerator.prepare(optimizer)
            first = 0

            # 4a. DPO: score every pair once with the reference model.
            self_reference, phase_cache = False, None
            if phase == "dpo":
                if resuming_here and resume["reference"]["train"] is not None:
                    reference = resume["reference"]
                else:
                    reference, self_reference, phase_cache = dpo_reference(
                        core, encoded_pairs, encoded_val_pairs, phase_index=phase_index,
                        config=config, rank=rank, world=world, pad_id=pad_id, device=device,
                        cache=cache, autocast=accelerator.autocast,
                        write=accelerator.is_main_process, should_cancel=should_cancel, say=say,
                    )
            if resuming_here:
                optimizer.load_state_dict(resume["optimizer"])
                scheduler.load_state_dict(resume["scheduler"])
                first = resume["phase_step"]
                step += first
                set_rng_state(resume["rng"])
                losses = dict(resume.get("losses", {}))
                resume = None

            # 4b. The optimizer steps of this phase.
            data = encoded_sft if phase == "sft" else encoded_pairs
            for phase_step in range(first, n_steps):
                tick = time.perf_counter()
                epoch = phase_step // per_epoch[phase]
                indices, counts = local_share(
                    epoch_order(len(data), config.seed, phase_index, epoch),
                    phase_step,
                    config.batch_size,
                    rank,
                    world,
                )
                chunk = [data[i] for i in indices]
                batch = (
                    collate_sft(chunk, pad_id) if phase == "sft" else collate_pairs(chunk, pad_id)
                )
                with accelerator.autocast():
                    logps = scorer(batch.to(device))
                # Each process's part of the mean over the whole global batch (distributed.py).
                share = step_weight(
                    accelerator,
                    (len(batch.targets) if phase == "sft" else len(chunk)) if counts else 0,
                    device,
                )
                if phase == "sft":
                    loss = sft_loss(logps, len(batch.targets)) * share
                    accuracy = margin = None
                else:
                    chosen, rejected = logps.float().split(len(chunk))
                    if self_reference and phase_step == 0:
                        # 4a'. The policy has not moved yet, so it *is* the reference here.
                        fill_from_step_one(
                            reference["train"], indices, chosen, rejected, encoded_pairs, phase_cache
                        )
                    ref = reference["train"][indices].to(device)
                    # For KTO "chosen" is each example's response, "rejected" its mismatched one.
                    loss, accuracy, margin = step_loss(
                        config, preference, indices, chosen, rejected, ref,
                        lambda kl: accelerator.reduce(kl, reduction="mean"),
                    )
                    # A mean over the rows (weighted or not: weights do not normalise it).
                    loss, accuracy, margin = loss * share, accuracy * share, margin * share
                accelerator.backward(loss)
                if config.max_grad_norm:
                    accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                current_lr = scheduler.get_last_lr()[0]
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                session_steps += 1

                # 4c. Report: averages over processes, throughput, and time left.
                loss_value = float(accelerator.reduce(loss.detach(), reduction="mean"))
                losses[phase] = loss_value
                tokens = int(
                    accelerator.reduce(
                        torch.tensor(batch.num_tokens, device=device), reduction="sum"
                    )
                )
                now = time.perf_counter()
                per_step = (now - session_started) / session_steps
                report = StepReport(
                    step=step,
                    total_steps=total_steps,
                    epoch=epoch + 1,
                    loss=loss_value,
                    reward_accuracy=None
                    if accuracy is None
                    else float(accelerator.reduce(accuracy, reduction="mean")),
                    reward_margin=None
                    if margin is None
                    else float(accelerator.reduce(margin, reduction="mean")),
                    tokens_per_s=tokens / max(now - tick, 1e-9),
                    elapsed_s=elapsed_before + now - started,
                    eta_s=per_step * (total_steps - step),
                    phase=phase,
                    learning_rate=current_lr,
                )
                history.append(report)
                if progress is not None and accelerator.is_main_process:
                    progress(report)

                # 4d. Checkpoint every N steps, and always before stopping on cancel.
                cancel = should_cancel is not None and bool(should_cancel())
                if world > 1:  # every process must stop at the same step
                    flag = torch.tensor(int(cancel), device=device)
                    cancel = bool(accelerator.reduce(flag, reduction="sum"))
                periodic = bool(config.checkpoint_every) and step % config.checkpoint_every == 0
                if periodic or cancel:
                    if accelerator.is_main_process:
                        save_checkpoint(
                            checkpoint_dir,
                            {
                                "format": CHECKPOINT_FORMAT,
                                "fingerprint": fingerprint,
                                "step": step,
                                "phase_index": phase_index,
                                "phase_step": phase_step + 1,
                                "lora": get_peft_model_state_dict(core.model),
                                "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(),
                                "rng": rng_state(),
                                "reference": reference,
                                "history": [asdict(r) for r in history],
                                "losses": losses,
                                "elapsed_s": elapsed_before + time.perf_counter() - started,
                            },
                        )
                    accelerator.wait_for_everyone()
                if cancel:
                    say(f"Cancelled at step {step}/{total_steps}; checkpoint written")
                    raise Cancelled(f"Cancelled at step {step}/{total_steps}")

        # 5. Validation on held-out examples.
        metrics = final_metrics(
            core, history, losses, encoded_val_sft, encoded_val_pairs, reference["val"],
            pad_id=pad_id, batch_size=config.batch_size, device=device, beta=config.beta,
            autocast=accelerator.autocast, cache=cache, write=accelerator.is_main_process,
        )
        say("Finished: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

        # 6. Write the adapter atomically, then the checkpoint is no longer needed.
        if accelerator.is_main_process:
            write_adapter(
                core.model,
                output_dir,
                {
                    "format": 1,
                    "base_model": str(model_dir),
                    "method": config.method,
                    "config": config.to_dict(),
                    "learning_rates": {name: config.lr_for(name) for name in phases},
                    "metrics": metrics,
                    "steps": step,
                    "num_pairs": len(pairs),
                    "num_pointwise": len(pointwise),
                    "num_sft": len(sft) if "sft" in phases else 0,
                    "meta": config.meta,
                    "train_seconds": round(elapsed_before + time.perf_counter() - started, 2),
                },
            )
            checkpoint_path(checkpoint_dir).unlink(missing_ok=True)
            say(f"Adapter written to {output_dir}")
        accelerator.wait_for_everyone()
        return TrainResult(adapter_dir=output_dir, steps=step, history=history, metrics=metrics)
    finally:
        if cache is not None:
            cache.close()
        torch.set_num_threads(previous_threads)
