"""What :meth:`FineTuneSession.summary` shows: a few readable lines (or an HTML table) about a session's state.

One line per stage — data, validation, job, model, evaluation, W&B — each saying what was done or what to call
next. Only the state is read (no request, no file but the state), so it is cheap and works on a state written
by an older version. :func:`state_dict` is the state as plain JSON, without the validation report texts that
the dataset artifacts' metadata carry (the numbers are in ``validation``).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from finetune_wb.session.state import SessionState

Line = tuple[str, str, list[str]]
"""(stage, headline, detail lines)."""


class SessionSummary(str):
    """The summary text (a ``str``); a notebook shows it as text, or as a table through ``_repr_html_``."""

    html: str = ""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython: the text, not a quoted repr
        printer.text(str(self))

    def _repr_html_(self) -> str:
        return self.html


def state_dict(state: SessionState, path: Path) -> dict[str, Any]:
    """The state as plain JSON with its path, without the report texts repeated in artifact metadata."""
    out: dict[str, Any] = {"state_path": str(path), **state.model_dump(mode="json")}
    for key in ("train_artifact", "test_artifact", "model_artifact"):
        validation = ((out.get(key) or {}).get("metadata") or {}).get("validation")
        if isinstance(validation, dict):
            validation.pop("summary", None)
    return out


def _value(metric: Any) -> tuple[float | None, float | None, float | None]:
    """(value, ci_low, ci_high) of a metric saved as an object or as a bare number."""
    if isinstance(metric, dict):
        metric = {k: metric.get(k) for k in ("value", "ci_low", "ci_high")}
        return metric["value"], metric["ci_low"], metric["ci_high"]
    if isinstance(metric, int | float) and not isinstance(metric, bool):
        return float(metric), None, None
    return None, None, None


def _fmt_metric(metric: Any) -> str:
    value, low, high = _value(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if low is None or high is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _fmt_p(p: Any) -> str:
    if not isinstance(p, int | float) or math.isnan(p):
        return "p n/a"
    return f"p={p:.2g}" if p >= 0.001 else "p<0.001"


def _majority_note(summary: dict[str, Any], model: str, evaluator: str, metric: Any) -> str:
    """`` (majority class 0.793)`` when the evaluator reports it; the verdict is in the report's warnings."""
    details = metric.get("details") if isinstance(metric, dict) else None
    extra = ((summary.get("metric_details") or {}).get(model) or {}).get(evaluator)
    for source in (details, extra):
        if isinstance(source, dict) and isinstance(source.get("majority_class_rate"), int | float):
            return f" (majority class {float(source['majority_class_rate']):.3f})"
    return ""


def _count(n: Any, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _data(st: SessionState) -> Line:
    if st.train_path is None:
        return ("data", "not prepared yet: call prepare(records, template=...) or use_files(train, test)", [])
    test = f"{st.n_test} test" if st.n_test is not None else "no test"
    split = st.split or {}
    how = [f"n_train={split['n_train']}" if split.get("n_train") is not None else ""]
    how.append(f"train_fraction={split['train_fraction']}" if split.get("train_fraction") is not None else "")
    how.append(f"seed {split['seed']}" if split.get("seed") is not None else "")
    how.append("stratified" if split.get("stratify") else "")
    parts = ", ".join(p for p in how if p)
    text = f"{st.n_train} train / {test} examples" + (f" ({parts})" if parts else "")
    return ("data", text + (f", train sha256 {st.train_digest[:12]}" if st.train_digest else ""), [])


def _validation(st: SessionState) -> Line:
    v = st.validation
    if not v:
        return ("validation", "not run yet: call validate()", [])
    head = "OK" if v.get("ok") else "ERRORS"
    counts = [_count(v.get(k), w) for k, w in (("n_examples", "example"), ("n_errors", "error"))]
    text = f"{head}: {', '.join(counts)}, {_count(v.get('n_warnings'), 'warning')}"
    if v.get("n_epochs") is not None:
        text += f"; {_count(v['n_epochs'], 'epoch')}"
    if isinstance(v.get("billed_tokens"), int):
        text += f", ~{v['billed_tokens']:,} billed tokens"
    if isinstance(v.get("estimated_cost_usd"), int | float):
        text += f", ~${v['estimated_cost_usd']:.4f}"
    if v.get("model"):
        text += f" for {v['model']}"
    if v.get("digest") and st.train_digest and v["digest"] != st.train_digest:
        text += " (of an earlier training file: validate again)"
    return ("validation", text, [])


def _job(st: SessionState) -> Line:
    from finetune_wb._secrets import safe_url

    spec = st.spec or {}
    if st.job_id is None:
        if st.job_request_id:
            return ("job", f"being created (request {st.job_request_id}): call fine_tune(spec) again", [])
        return ("job", "none yet: call fine_tune(JobSpec(model=...))", [])
    text = f"{st.job_id} {st.job_status or 'status unknown'}"
    what = [str(spec["model"])] if spec.get("model") else []
    if spec.get("n_epochs") not in (None, "auto"):
        what.append(_count(spec["n_epochs"], "epoch"))
    if what:
        text += f" ({', '.join(what)})"
    server = safe_url(st.base_url)
    return ("job", text + (f" at {server}" if server else ""), [])


def _model(st: SessionState) -> Line:
    if st.fine_tuned_model:
        tokens = f" ({st.trained_tokens:,} trained tokens)" if isinstance(st.trained_tokens, int) else ""
        return ("model", st.fine_tuned_model + tokens, [])
    if st.job_id is None:
        return ("model", "none yet", [])
    if st.job_status in ("failed", "cancelled"):
        return ("model", f"none: the job {st.job_status}", [])
    return ("model", "not yet: call wait()", [])


def _deployment(st: SessionState) -> Line:
    dep = st.deployment or {}
    fee = dep.get("hosting_usd_per_hour")
    cost = "no hosting fee" if not fee else f"hosting ${fee:.2f}/hour until undeployed"
    text = f"{dep.get('name')} ({dep.get('sku')}, {dep.get('state')}, {cost})"
    return ("deployment", text, [f"error: {dep['error']}"] if dep.get("error") else [])


def _evaluation(st: SessionState) -> Line:
    summary = st.eval_summary
    if not summary:
        return ("evaluation", "not run yet: call evaluate(baselines=[...])", [])
    metrics: dict[str, Any] = summary.get("metrics") or {}
    rows = [m.get("n_rows") for m in summary.get("models") or [] if isinstance(m, dict)]
    n = next((r for r in rows if isinstance(r, int)), summary.get("n_examples"))
    head = (f"{_count(n, 'example')}, " if n is not None else "") + _count(len(metrics), "model")

    def name(model: str) -> str:
        return f"{model} (fine-tune)" if model == st.fine_tuned_model else model

    details = []
    for model, per in metrics.items():
        if isinstance(per, dict):
            scores = "; ".join(
                f"{ev} {_fmt_metric(m)}{_majority_note(summary, model, ev, m)}" for ev, m in per.items()
            )
            details.append(f"{name(model)}: {scores}")
    pairs: dict[tuple[str, str], list[str]] = {}
    for c in summary.get("comparisons") or []:
        if isinstance(c, dict) and isinstance(c.get("difference"), int | float):
            a = "fine-tune" if c.get("model_a") == st.fine_tuned_model else str(c.get("model_a"))
            key = (a, str(c.get("model_b")))
            pairs.setdefault(key, []).append(
                f"{c.get('evaluator')} {c['difference']:+.3f} ({_fmt_p(c.get('p_value'))})"
            )
    details.extend(f"{a} vs {b}: {', '.join(diffs)}" for (a, b), diffs in pairs.items())
    warnings = [str(w) for w in summary.get("warnings") or []]
    details.extend(f"warning: {w}" for w in warnings[:3])
    if len(warnings) > 3:
        details.append(f"... and {len(warnings) - 3} more")
    return ("evaluation", head, details)


def _wandb(st: SessionState) -> Line:
    where = f"{st.entity}/{st.project}" if st.entity else st.project
    runs = ", ".join(st.wandb_runs) if st.wandb_runs else "no runs yet"
    return ("W&B", f"project {where}: {runs}", [])


def lines(st: SessionState) -> list[Line]:
    deployment = [_deployment(st)] if st.deployment else []  # Azure OpenAI only
    return [_data(st), _validation(st), _job(st), _model(st), *deployment, _evaluation(st), _wandb(st)]


def session_summary(st: SessionState, path: Path) -> SessionSummary:
    """The readable summary of the session whose state ``st`` is saved at ``path``."""
    rows = lines(st)
    width = max(len(stage) for stage, _, _ in rows) + 1
    text = [f"FineTuneSession {st.session_id} — state {path}"]
    for stage, head, details in rows:
        text.append(f"  {stage + ':':<{width}} {head}")
        text.extend(f"    {d}" for d in details)
    out = SessionSummary("\n".join(text))
    out.html = session_html(st, path, rows)
    return out


def session_html(st: SessionState, path: Path, rows: list[Line] | None = None) -> str:
    """A small HTML table of :func:`lines`, for a notebook."""
    esc = html.escape
    body = "".join(
        f"<tr><th style='text-align:left'>{esc(stage)}</th><td style='text-align:left'>{esc(head)}"
        + "".join(f"<br>{esc(d)}" for d in details)
        + "</td></tr>"
        for stage, head, details in (rows if rows is not None else lines(st))
    )
    return (
        f"<div class='finetune-wb-session'><p><b>FineTuneSession</b> <code>{esc(st.session_id)}</code> — "
        f"<code>{esc(str(path))}</code></p><table>{body}</table></div>"
    )
