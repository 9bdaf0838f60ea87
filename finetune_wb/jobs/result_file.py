"""A fine-tuning job's result file: the per-step metrics the server writes once the job ends.

The file is a CSV (``step,train_loss,train_accuracy,valid_loss,...``), served plain or base64-encoded
depending on the server; :func:`parse_result_file` reads both.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import time
from typing import TYPE_CHECKING, Any

from finetune_wb._client import without_retries
from finetune_wb._retry import policy_or_default
from finetune_wb.errors import JobError
from finetune_wb.jobs.retrieval import retrieve_job
from finetune_wb.schema import TERMINAL_JOB_STATUSES

if TYPE_CHECKING:  # pragma: no cover
    import openai
    from openai.types.fine_tuning import FineTuningJob

    from finetune_wb._retry import RetryPolicy


def parse_result_file(content: bytes | str) -> list[dict[str, float]]:
    """Rows of a job's result file; accepts plain CSV and base64-encoded CSV.

    Keys come from the CSV header (``step``, ``train_loss``, ``train_accuracy``, ``valid_loss``, ...);
    empty cells are left out of the row; ``step`` is an ``int``.
    """
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
    text = text.lstrip("\ufeff")
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    if "," not in first_line:
        try:
            text = base64.b64decode("".join(text.split()), validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise JobError(f"the result file is neither CSV nor base64-encoded CSV ({exc})") from exc
    rows: list[dict[str, float]] = []
    for record in csv.DictReader(io.StringIO(text)):
        row: dict[str, float] = {}
        for key, value in record.items():
            if key is None or value is None or value.strip() == "":
                continue
            try:
                number = float(value)
            except ValueError:
                continue
            row[key.strip()] = int(number) if key.strip() == "step" else number
        if row:
            rows.append(row)
    return rows


def job_metrics(
    job: str | FineTuningJob,
    *,
    client: openai.OpenAI | None = None,
    retry: RetryPolicy | None = None,
) -> list[dict[str, float]]:
    """The job's result file parsed into one dict per step (empty list for an ended job without one)."""
    from finetune_wb._client import get_client

    policy = policy_or_default(retry, time.sleep)
    raw = without_retries(get_client(client))
    final: Any = job
    if isinstance(job, str) or not getattr(job, "result_files", None):
        final = retrieve_job(job, client=raw, policy=policy)
    result_files = list(getattr(final, "result_files", None) or [])
    if not result_files:
        if final.status not in TERMINAL_JOB_STATUSES:
            raise JobError(
                f"fine-tuning job {final.id} is {final.status}; its result file exists once it ends - "
                f"wait_for_job({final.id!r}) first",
                job_id=final.id,
            )
        return []
    response = policy.call(raw.files.content, result_files[0])
    data = response.content if hasattr(response, "content") else response.read()
    return parse_result_file(data)
