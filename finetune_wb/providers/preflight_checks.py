"""Checks before an upload or a job: will the provider take the job at all, and will its base model last?

:func:`preflight` raises :class:`PreflightError` when the job cannot run: OpenAI takes no new fine-tuning
jobs from :data:`~finetune_wb.retirement_dates.FINE_TUNING_JOBS_END`, a base model already shut down, or a
field the provider refuses (:class:`~finetune_wb.providers.checks.ProviderRefusal`). It returns warnings
for a base model that shuts down within ``warn_within_days``. :func:`jobs_end_refusal` turns a server's
refusal for that reason into the same message.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from finetune_wb.errors import ConfigError
from finetune_wb.providers.checks import check_job_spec, get_profile
from finetune_wb.providers.profiles import ProviderProfile
from finetune_wb.retirement_dates import FINE_TUNING_JOBS_END, Retirement, retirement_of
from finetune_wb.schema import JobSpec

WARN_WITHIN_DAYS = 30

GO_ON_AZURE = (
    "to go on, run the same JobSpec on Azure OpenAI: pass client=openai.AzureOpenAI(...) (or set "
    "AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION, or use `finetune-wb train --provider "
    "azure`), then deploy the fine-tune (finetune-wb deploy) before evaluating it; see docs/azure.md"
)
_JOBS_END_TEXT = re.compile(
    r"(no longer|not).{0,40}(accept|creat|availab|support).{0,60}fine.?tun|fine.?tun.{0,60}"
    r"(no longer|discontinued|ended|deprecated|retired)",
    re.IGNORECASE | re.DOTALL,
)


def _today() -> dt.date:
    """Today's date (a seam: tests of callers that take no ``today`` replace it)."""
    return dt.date.today()


class PreflightError(ConfigError):
    """The job would be refused or would not last; nothing was uploaded. ``.reason`` is a short code."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def jobs_end_message(today: dt.date | None = None) -> str:
    when = f"since {FINE_TUNING_JOBS_END.isoformat()}"
    return f"OpenAI takes no new fine-tuning jobs {when} (its API refuses them); {GO_ON_AZURE}"


def preflight(
    spec: JobSpec,
    *,
    provider: str | ProviderProfile,
    today: dt.date | None = None,
    table: dict[str, Retirement] | None = None,
    warn_within_days: int = WARN_WITHIN_DAYS,
) -> list[str]:
    """Check ``spec`` for ``provider`` before anything is uploaded; return warnings, raise when it cannot run.

    ``today`` is injectable for tests. ``table`` replaces the shutdown table (an Azure schedule, say): by
    default OpenAI's table applies to the openai profile only.
    """
    profile = get_profile(provider)
    today = today or _today()
    if profile.jobs_end is not None and today >= dt.date.fromisoformat(profile.jobs_end):
        raise PreflightError(jobs_end_message(today), reason="jobs_end")
    check_job_spec(spec, profile)
    warnings: list[str] = []
    if table is not None or profile.uses_openai_retirements:
        row = retirement_of(spec.model, table)
        if row is not None:
            days = (row.shutdown_date - today).days
            instead = f"; fine-tune {row.replacement} instead" if row.replacement else ""
            if days <= 0:
                raise PreflightError(
                    f"base model {spec.model} was shut down on {row.shutdown_date.isoformat()} (source: "
                    f"{row.source}): a job on it would be refused, and its fine-tunes no longer answer"
                    f"{instead}",
                    reason="model_shut_down",
                )
            if days <= warn_within_days:
                warnings.append(
                    f"base model {spec.model} shuts down on {row.shutdown_date.isoformat()} (in {days} days; "
                    f"source: {row.source}): the fine-tune stops answering with it{instead}"
                )
    return warnings


def jobs_end_refusal(exc: BaseException) -> PreflightError | None:
    """A :class:`PreflightError` when ``exc`` is the server refusing new fine-tuning jobs, else None."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int) or status < 400 or status >= 500:
        return None
    body: Any = getattr(exc, "body", None)
    text = str(exc)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            text = f"{err.get('code') or ''} {err.get('message') or ''} {text}"
    if "fine_tuning_jobs_ended" in text or _JOBS_END_TEXT.search(text):
        return PreflightError(
            f"the server refused the job ({text.strip()[:200]}); {GO_ON_AZURE}", reason="jobs_end"
        )
    return None
