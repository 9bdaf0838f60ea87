"""How a batch-mode evaluation runs (:class:`BatchOptions`) and what the report says of each batch
(:class:`BatchSummary`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BATCH_MAX_BYTES", "BATCH_MAX_REQUESTS", "BatchOptions", "BatchSummary"]

BATCH_MAX_REQUESTS = 50_000
"""OpenAI's limit on the requests of one batch input file."""

BATCH_MAX_BYTES = 200 * 1024 * 1024
"""OpenAI's limit on the size of one batch input file (200 MB)."""


class BatchOptions(BaseModel):
    """The settings of ``evaluate(..., mode="batch")`` (``batch=BatchOptions(...)``); all have defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_requests: int = Field(
        default=BATCH_MAX_REQUESTS, ge=1, le=BATCH_MAX_REQUESTS, description="requests per input file (shard)"
    )
    max_bytes: int = Field(default=BATCH_MAX_BYTES, ge=1024, description="bytes per input file (shard)")
    wait: bool = Field(
        default=True,
        description="wait for the batches to finish and collect them; False submits and returns (run the "
        "same evaluation again to collect)",
    )
    fallback: Literal["sync"] | None = Field(
        default=None,
        description="'sync': ask rows whose batch line errored, expired or was cancelled synchronously in "
        "this run; None: they keep their error and go into a new batch on the next run",
    )
    poll_interval: float = Field(default=5.0, gt=0, description="first wait between status checks (s)")
    max_poll_interval: float = Field(default=60.0, gt=0, description="longest wait between status checks (s)")
    timeout: float | None = Field(
        default=None,
        description="stop waiting after this many seconds (the batches keep running; run again to collect)",
    )
    discount: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="the batch discount on the list price (None: pricing.BATCH_DISCOUNT, 0.5)",
    )
    metadata: dict[str, str] = Field(
        default_factory=dict, description="extra metadata on every batch created (at most 12 keys)"
    )


class BatchSummary(BaseModel):
    """One batch of an evaluation, as ``--json`` prints it under ``batches``."""

    id: str | None = Field(description="the batch id (None: its shard is not submitted yet)")
    status: str = Field(description="validating, in_progress, finalizing, completed, failed, expired, ...")
    request_counts: dict[str, int] = Field(description="{total, completed, failed} as the server reports")
    model: str
    shard: str = Field(description="the local shard id (also metadata finetune_wb_shard of the batch)")
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    n_requests: int = Field(description="request lines in the input file")
    collected: bool = Field(description="its output and error files were read into the answer cache")
    n_collected: int = Field(default=0, description="answers read from its output file")
    n_errored: int = Field(default=0, description="lines in its error file or missing from its output")
    skipped_lines: list[str] = Field(
        default_factory=list, description="output/error lines that could not be read (corrupt, truncated)"
    )
    errors: list[dict[str, Any]] = Field(
        default_factory=list, description="validation errors: code, message, line and the example it concerns"
    )
    estimated_cost_usd: float | None = Field(description="estimate at the batch price before submitting")
    estimated_sync_cost_usd: float | None = Field(description="the same estimate at the synchronous price")
    cost_usd: float | None = Field(default=None, description="collected usage at the batch price")
    sync_cost_usd: float | None = Field(default=None, description="collected usage at the synchronous price")
