"""Which fine-tunes stop answering, when, and what to do before: :func:`retirements`.

Every fine-tuned model the key can see (the models list, and the ``fine_tuned_model`` of its fine-tuning
jobs) gets its base model, its shutdown date and where that date comes from: the server's own
``shutdown_date`` on ``GET /v1/models`` (for the model, else for its base model), else the documented table in
:mod:`finetune_wb.retirement_dates`, else unknown. The status is ``"retired"`` (the date has passed: its
requests fail), ``"retiring"`` (within ``window_days``, default 90), ``"ok"`` or ``"unknown"``.

Whether W&B holds its lineage is read from this machine's records (offline too): a synced fine-tune run for
its job (``synced_jobs.json``) and a logged model artifact (``artifacts.json``); online, with ``project=``,
W&B's runs of that project are asked as well.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from finetune_wb.model_ids import base_model_of, is_fine_tuned
from finetune_wb.retirement_dates import FINE_TUNING_JOBS_END, Retirement, retirement_of

DEFAULT_WINDOW_DAYS = 90
"""A model whose shutdown is at most this many days away is ``"retiring"``."""

Status = Literal["retired", "retiring", "ok", "unknown"]
_URGENCY = {"retired": 0, "retiring": 1, "unknown": 2, "ok": 3}


class WandbLineage(BaseModel):
    synced_job: bool = Field(description="a fine-tune run of its job is recorded (W&B holds the job)")
    model_artifact: bool = Field(description="a model artifact of it is recorded")


class ModelRetirement(BaseModel):
    """One fine-tuned model and its retirement."""

    model: str
    base_model: str
    shutdown_date: dt.date | None = Field(description="when it stops answering; None when unknown")
    date_source: Literal["server", "table", "unknown"]
    source_detail: str | None = Field(
        default=None, description="the table row's source, or the model id whose server date was used"
    )
    days_left: int | None = Field(description="days from today to the shutdown date (<= 0: shut down)")
    status: Status
    job_id: str | None = None
    listed: bool = Field(description="in the models list (False: known only from a job, e.g. deleted)")
    replacement: str | None = Field(default=None, description="the replacement the table suggests")
    wandb: WandbLineage
    next_step: str


class RetirementInventory(BaseModel):
    """The result of :func:`retirements`, most urgent first."""

    today: dt.date
    window_days: int
    fine_tuning_jobs_end: dt.date = Field(description="OpenAI takes no new fine-tuning jobs from this date")
    models: list[ModelRetirement]
    counts: dict[str, int] = Field(description="status -> number of models")

    def summary(self) -> str:
        if not self.models:
            return "No fine-tuned models visible to this key."
        lines = [f"{'status':9} {'days':>5}  {'shutdown':10}  model (base) -- next step"]
        for m in self.models:
            days = "-" if m.days_left is None else str(m.days_left)
            date = m.shutdown_date.isoformat() if m.shutdown_date else "unknown"
            lines.append(f"{m.status:9} {days:>5}  {date:10}  {m.model} ({m.base_model}) -- {m.next_step}")
        counts = ", ".join(f"{n} {s}" for s, n in self.counts.items() if n)
        lines.append(f"{len(self.models)} fine-tuned model(s): {counts} (as of {self.today.isoformat()})")
        return "\n".join(lines)


def parse_shutdown_date(value: Any) -> dt.date | None:
    """A server's ``shutdown_date``: an ISO date or datetime, or unix seconds; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc).date()
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


def server_shutdown_dates(models: list[Any]) -> dict[str, dt.date]:
    """Model id -> the ``shutdown_date`` the server lists for it (openai keeps unknown fields as extras)."""
    out: dict[str, dt.date] = {}
    for m in models:
        extra = getattr(m, "model_extra", None) or {}
        raw = extra.get("shutdown_date", getattr(m, "shutdown_date", None))
        date = parse_shutdown_date(raw)
        if date is not None:
            out[str(m.id)] = date
    return out


def _status(date: dt.date | None, today: dt.date, window_days: int) -> tuple[Status, int | None]:
    if date is None:
        return "unknown", None
    days = (date - today).days
    if days <= 0:
        return "retired", days
    return ("retiring" if days <= window_days else "ok"), days


def _next_step(entry: dict[str, Any], lineage: WandbLineage, today: dt.date) -> str:
    status, model, replacement = entry["status"], entry["model"], entry.get("replacement")
    to = f" (the table suggests {replacement})" if replacement else ""
    if status == "retired":
        return (
            "shut down: its requests fail and its answers can no longer be recorded; evaluate a replacement "
            f"on its test set with `finetune-wb migrate`{to}"
        )
    steps = []
    if not lineage.synced_job and entry.get("job_id"):
        steps.append("`finetune-wb sync` its job to W&B")
    if status in ("retiring", "unknown"):
        steps.append(f"record its answers now: `finetune-wb snapshot {model} --data PROMPTS.jsonl`")
        steps.append(f"then compare replacements with `finetune-wb migrate`{to}")
        if today < FINE_TUNING_JOBS_END:
            steps.append(f"re-fine-tuning on OpenAI is possible until {FINE_TUNING_JOBS_END.isoformat()}")
    if not steps:
        return "nothing urgent" + (f"; shuts down {entry['shutdown_date']}" if entry["shutdown_date"] else "")
    return "; ".join(steps)


def _synced_job_ids() -> set[str]:
    from finetune_wb.tracking.records import read_record
    from finetune_wb.tracking.synced import SYNC_RECORD

    data = read_record(SYNC_RECORD)
    return {job for key, jobs in data.items() if "/" in key and isinstance(jobs, dict) for job in jobs}


def _lineage(model: str, job_id: str | None, synced: set[str], project: str | None) -> WandbLineage:
    from finetune_wb.tracking.model_artifact import model_ref

    has_run = job_id is not None and job_id in synced
    if not has_run and job_id is not None and project is not None:
        from finetune_wb.tracking.mode import is_offline

        if not is_offline():
            from finetune_wb.tracking.synced import is_synced

            has_run = is_synced(job_id, project=project)
    artifact = model_ref(fine_tuned_model=model) or (model_ref(job_id=job_id) if job_id else None)
    return WandbLineage(synced_job=has_run, model_artifact=artifact is not None)


def retirements(
    client: Any = None,
    *,
    today: dt.date | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    table: dict[str, Retirement] | None = None,
    project: str | None = None,
) -> RetirementInventory:
    """Every fine-tuned model this key can see, with its shutdown date, days left, status and next step.

    ``client``: an ``openai.OpenAI`` (None: from the environment). ``today``: the date to count from (default:
    today, UTC). ``table``: replaces :data:`finetune_wb.retirement_dates.SHUTDOWN_DATES`. ``project``: also
    ask this W&B project (online only) whether a job was synced.
    """
    from finetune_wb._client import get_client

    if window_days < 0:
        raise ValueError(f"window_days must be >= 0, got {window_days}")
    today = today or dt.datetime.now(dt.timezone.utc).date()
    client = get_client(client)
    listed = list(client.models.list())
    server_dates = server_shutdown_dates(listed)
    listed_ids = [str(m.id) for m in listed]
    found: dict[str, dict[str, Any]] = {
        m: {"model": m, "base_model": base_model_of(m), "job_id": None, "listed": True}
        for m in listed_ids
        if is_fine_tuned(m)
    }
    for job in client.fine_tuning.jobs.list(limit=100):
        name = getattr(job, "fine_tuned_model", None)
        if not name:
            continue
        entry = found.setdefault(
            name, {"model": name, "base_model": base_model_of(name), "job_id": None, "listed": False}
        )
        entry["job_id"] = entry["job_id"] or job.id
        base = getattr(job, "model", None)
        if base:
            entry["base_model"] = base_model_of(str(base))
    synced = _synced_job_ids()
    rows: list[ModelRetirement] = []
    for entry in found.values():
        model, base = entry["model"], entry["base_model"]
        row = retirement_of(model, table) or retirement_of(base, table)
        entry["replacement"] = row.replacement if row else None
        if model in server_dates or base in server_dates:
            used = model if model in server_dates else base
            entry.update(shutdown_date=server_dates[used], date_source="server", source_detail=used)
        elif row is not None:
            entry.update(shutdown_date=row.shutdown_date, date_source="table", source_detail=row.source)
        else:
            entry.update(shutdown_date=None, date_source="unknown", source_detail=None)
        entry["status"], entry["days_left"] = _status(entry["shutdown_date"], today, window_days)
        lineage = _lineage(model, entry["job_id"], synced, project)
        rows.append(ModelRetirement(**entry, wandb=lineage, next_step=_next_step(entry, lineage, today)))
    rows.sort(key=lambda r: (_URGENCY[r.status], r.days_left if r.days_left is not None else 10**6, r.model))
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("retired", "retiring", "unknown", "ok")}
    return RetirementInventory(
        today=today,
        window_days=window_days,
        fine_tuning_jobs_end=FINE_TUNING_JOBS_END,
        models=rows,
        counts=counts,
    )
