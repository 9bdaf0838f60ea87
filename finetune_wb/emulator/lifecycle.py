"""Fine-tuning job lifecycle: validating_files -> queued -> running -> succeeded | failed | cancelled.

Jobs progress by the clock, lazily: every request (and every Python-side look) calls :func:`tick`, which
plays forward whatever would have happened since the last look, with event timestamps from the schedule.
So a :class:`~finetune_wb.emulator.clock.ManualClock` gives exact, repeatable runs.

Schedule at ``pace`` p (1.0 = default): validating 1 s, queued 1 s, training min(6, 1 + 0.02 * steps) s,
finalising 0.5 s, each times p. A 100-example, 3-epoch job (300 steps at batch size 1) takes 8.5 s.
"""

from __future__ import annotations

import base64
import json
import math
import random
from typing import Any

from finetune_wb.emulator.answerers import read_pairs
from finetune_wb.emulator.azure import azure_result_csv, checkpoint_name
from finetune_wb.emulator.checks import check_file
from finetune_wb.emulator.state import ApiError, Store, new_id
from finetune_wb.schema import TERMINAL_JOB_STATUSES

VALIDATE_S, QUEUE_S, FINALISE_S = 1.0, 1.0, 0.5
MAX_METRIC_EVENTS = 1000


def add_event(
    store: Store,
    job_id: str,
    t: float,
    message: str,
    *,
    level: str = "info",
    data: Any = None,
    type: str = "message",
) -> None:
    store.events.setdefault(job_id, []).append(
        {
            "id": new_id("ftevent-"),
            "object": "fine_tuning.job.event",
            "created_at": int(t),
            "level": level,
            "message": message,
            "data": data if data is not None else {},
            "type": type,
        }
    )


def metrics_at(seed: int, step: int, total: int, *, validation: bool) -> dict[str, float]:
    """Deterministic, plausibly decreasing loss / increasing accuracy curves."""
    rng = random.Random(f"{seed}:{step}")
    frac = step / max(total, 1)
    loss = 0.12 + 2.2 * math.exp(-4.0 * frac) + rng.uniform(-0.06, 0.06)
    out = {
        "step": float(step),
        "train_loss": round(max(loss, 0.01), 5),
        "train_mean_token_accuracy": round(
            min(0.999, max(0.0, 1.0 - loss / 2.8 + rng.uniform(-0.03, 0.03))), 5
        ),
    }
    if validation:
        vloss = loss + 0.08 + rng.uniform(-0.05, 0.05)
        out["valid_loss"] = round(max(vloss, 0.01), 5)
        out["valid_mean_token_accuracy"] = round(min(0.999, max(0.0, 1.0 - vloss / 2.8)), 5)
    return out


def _fail(store: Store, job: dict[str, Any], t: float, *, code: str, message: str, param: str | None) -> None:
    job["status"] = "failed"
    job["error"] = {"code": code, "message": message, "param": param}
    job["finished_at"] = int(t)
    job["estimated_finish"] = None
    add_event(store, job["id"], t, message, level="error")


def _validate(store: Store, job: dict[str, Any], t: float) -> bool:
    """Run the project's validator on the job's files; fail the job on the first bad line."""
    rt = store.runtime[job["id"]]
    hp = job["method"][job["method"]["type"]]["hyperparameters"]
    epochs = hp["n_epochs"] if isinstance(hp["n_epochs"], int) else None
    reports = {}
    for param in ("training_file", "validation_file"):
        file_id = job.get(param)
        if file_id is None:
            continue
        if file_id not in store.files:
            _fail(
                store,
                job,
                t,
                code=f"invalid_{param}",
                param=param,
                message=f"The job failed: {param} {file_id} was deleted before it could be validated.",
            )
            return False
        check = check_file(
            store,
            file_id,
            model=job["model"],
            n_epochs=epochs,
            validation=param == "validation_file",
            method=job["method"]["type"],
        )
        if not check.ok and check.code == "validation_unavailable":
            # The emulator's environment, not the file, is at fault: say so instead of blaming the data.
            _fail(
                store,
                job,
                t,
                code="validation_unavailable",
                param=param,
                message=f"The job failed: the emulator could not validate {param} {file_id}: "
                f"{check.message}. Fix the emulator's environment and create the job again; the file "
                "itself was not checked.",
            )
            return False
        if not check.ok:
            which = "training" if param == "training_file" else "validation"
            where = f"line {check.line}" if check.line else "the file as a whole"
            _fail(
                store,
                job,
                t,
                code=f"invalid_{param}",
                param=param,
                message=f"The job failed due to an invalid {which} file ({file_id}): {where}: "
                f"{check.message} [{check.code}]. Fix it and upload the file again.",
            )
            return False
        reports[param] = check
    train = reports["training_file"]
    n = max(train.n_examples, 1)
    n_epochs = epochs or train.n_epochs or 3
    batch = hp["batch_size"] if isinstance(hp["batch_size"], int) else max(1, min(256, round(n * 0.002)))
    lr = hp["learning_rate_multiplier"] if hp["learning_rate_multiplier"] != "auto" else 1.8
    hp.update(n_epochs=n_epochs, batch_size=batch, learning_rate_multiplier=lr)
    if "beta" in hp and hp["beta"] == "auto":
        hp["beta"] = 0.1
    job["hyperparameters"] = {k: hp[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier")}
    per_epoch = max(1, math.ceil(n / batch))
    total = per_epoch * n_epochs
    rt.update(
        steps_per_epoch=per_epoch,
        total_steps=total,
        n_epochs=n_epochs,
        has_valid="validation_file" in reports,
        step_dur=min(6.0, 1.0 + 0.02 * total) / total * rt["pace"],
        trained_tokens=train.tokens * n_epochs,
    )
    pairs = read_pairs(store.blob_path(job["training_file"]))
    parent = store.fine_tuned_models().get(job["model"])
    if parent is not None:  # continued fine-tuning: the new data first, then what the parent knew
        pairs += [(p, a) for p, a in json.loads(store.read_blob(f"model-{parent['id']}.json"))]
    store.write_blob(f"model-{job['id']}.json", json.dumps(pairs).encode("utf-8"))
    return True


def tick(store: Store, job: dict[str, Any], now: float) -> None:
    """Play the job forward to ``now``."""
    rt = store.runtime[job["id"]]
    if rt.get("external"):  # a Trainer of its own runs this job (emulator/trainers.py)
        return
    pace = rt["pace"]
    changed = False
    while job["status"] not in TERMINAL_JOB_STATUSES and job["status"] != "paused":
        start = rt["phase_started"]
        if job["status"] == "validating_files":
            t = start + VALIDATE_S * pace
            if now < t:
                break
            changed = True
            if not _validate(store, job, t):
                break
            add_event(store, job["id"], t, "Files validated, moving job to queued state")
            job["status"], rt["phase_started"] = "queued", t
        elif job["status"] == "queued":
            t = start + QUEUE_S * pace
            if now < t:
                break
            changed = True
            add_event(store, job["id"], t, "Fine-tuning job started")
            job["status"], rt["phase_started"] = "running", t
            job["estimated_finish"] = int(t + rt["step_dur"] * rt["total_steps"] + FINALISE_S * pace)
        else:  # running
            changed |= _run_steps(store, job, rt, now)
            end = start + rt["step_dur"] * rt["total_steps"] + FINALISE_S * pace
            if rt["steps_done"] >= rt["total_steps"] and now >= end:
                _succeed(store, job, rt, end)
                changed = True
            break
    if changed:
        store.save()


def _run_steps(store: Store, job: dict[str, Any], rt: dict[str, Any], now: float) -> bool:
    total, dur = rt["total_steps"], rt["step_dur"]
    target = min(total, int((now - rt["phase_started"]) / dur + 1e-9))
    if target <= rt["steps_done"]:
        return False
    stride = max(1, math.ceil(total / MAX_METRIC_EVENTS))
    per_epoch, n_epochs = rt["steps_per_epoch"], rt["n_epochs"]
    for step in range(rt["steps_done"] + 1, target + 1):
        t = rt["phase_started"] + step * dur
        if step % stride == 0 or step == total:
            m = metrics_at(job["seed"], step, total, validation=rt["has_valid"])
            data = {"step": step, "total_steps": total, **{k: v for k, v in m.items() if k != "step"}}
            add_event(
                store,
                job["id"],
                t,
                f"Step {step}/{total}: training loss={m['train_loss']:.4f}",
                data=data,
                type="metrics",
            )
        epoch, rem = divmod(step, per_epoch)
        if rem == 0 and epoch > n_epochs - 3:
            _checkpoint(store, job, rt, step, t)
    rt["steps_done"] = target
    return True


def _checkpoint(store: Store, job: dict[str, Any], rt: dict[str, Any], step: int, t: float) -> None:
    m = metrics_at(job["seed"], step, rt["total_steps"], validation=rt["has_valid"])
    metrics: dict[str, Any] = {"step": float(step), **{k: v for k, v in m.items() if k != "step"}}
    if rt["has_valid"]:
        metrics["full_valid_loss"] = m["valid_loss"]
        metrics["full_valid_mean_token_accuracy"] = m["valid_mean_token_accuracy"]
    store.checkpoints.setdefault(job["id"], []).append(
        {
            "id": new_id("ftckpt_"),
            "object": "fine_tuning.job.checkpoint",
            "created_at": int(t),
            "fine_tuned_model_checkpoint": (
                checkpoint_name(job["id"], step)
                if store.flavour == "azure"
                else f"{rt['ft_name']}:ckpt-step-{step}"
            ),
            "fine_tuning_job_id": job["id"],
            "metrics": metrics,
            "step_number": step,
        }
    )
    add_event(store, job["id"], t, f"Checkpoint created at step {step}")


def result_csv(job: dict[str, Any], rt: dict[str, Any]) -> str:
    rows = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
    for step in range(1, rt["total_steps"] + 1):
        m = metrics_at(job["seed"], step, rt["total_steps"], validation=rt["has_valid"])
        rows.append(
            f"{step},{m['train_loss']},{m['train_mean_token_accuracy']},"
            f"{m.get('valid_loss', '')},{m.get('valid_mean_token_accuracy', '')}"
        )
    return "\n".join(rows) + "\n"


def _succeed(store: Store, job: dict[str, Any], rt: dict[str, Any], t: float) -> None:
    csv = azure_result_csv(job, rt, metrics_at) if store.flavour == "azure" else result_csv(job, rt)
    # Like the real API, the result file's content is the base64 encoding of the CSV.
    result = store.add_file(
        data=base64.b64encode(csv.encode()), filename="step_metrics.csv", purpose="fine-tune-results", now=t
    )
    job.update(
        status="succeeded",
        fine_tuned_model=rt["ft_name"],
        finished_at=int(t),
        estimated_finish=None,
        trained_tokens=rt["trained_tokens"],
        result_files=[result["id"]],
    )
    add_event(store, job["id"], t, f"New fine-tuned model created: {rt['ft_name']}")
    add_event(store, job["id"], t, "The job has successfully completed")


def _invalid_state(job: dict[str, Any], why: str, *, done: bool = False) -> ApiError:
    """The 400 OpenAI answers for an action the job's status does not allow."""
    state = f"has already {job['status']}" if done else f"is {job['status']}"
    return ApiError(
        400, f"Job {job['id']} {state}; {why}.", param="fine_tuning_job_id", code="invalid_job_state"
    )


def cancel(store: Store, job: dict[str, Any], now: float) -> None:
    tick(store, job, now)
    if job["status"] in TERMINAL_JOB_STATUSES:
        raise _invalid_state(
            job, "only a job that is validating, queued, running or paused can be cancelled", done=True
        )
    job.update(status="cancelled", finished_at=int(now), estimated_finish=None)
    add_event(store, job["id"], now, "Fine-tuning job cancelled")
    store.save()


def pause(store: Store, job: dict[str, Any], now: float) -> None:
    tick(store, job, now)
    if job["status"] != "running":
        raise _invalid_state(job, "only a running job can be paused")
    store.runtime[job["id"]]["paused_at"] = now
    job["status"] = "paused"
    add_event(store, job["id"], now, "Fine-tuning job paused")
    store.save()


def resume(store: Store, job: dict[str, Any], now: float) -> None:
    tick(store, job, now)
    if job["status"] != "paused":
        raise _invalid_state(job, "only a paused job can be resumed")
    rt = store.runtime[job["id"]]
    shift = now - rt.pop("paused_at")
    rt["phase_started"] += shift
    job["status"] = "running"
    if job.get("estimated_finish"):
        job["estimated_finish"] = int(job["estimated_finish"] + shift)
    add_event(store, job["id"], now, "Fine-tuning job resumed")
    store.save()


def fail(
    store: Store, job: dict[str, Any], now: float, *, code: str, message: str, param: str | None
) -> None:
    tick(store, job, now)
    if job["status"] in TERMINAL_JOB_STATUSES:
        raise _invalid_state(job, "it cannot be made to fail", done=True)
    _fail(store, job, now, code=code, message=message, param=param)
    store.save()
