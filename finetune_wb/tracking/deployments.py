"""A deployment in W&B: which model (artifact) went behind which Azure deployment, and what it costs.

:func:`log_deployment` writes the deployment into a run's config (``deployment``) and summary, and records
the model artifact as the run's input (an edge in W&B online, ids and digests in ``config.lineage``
offline), so the lineage reads data -> fine-tune -> model -> deployment -> evaluation.
"""

from __future__ import annotations

from typing import Any

from finetune_wb._secrets import scrub
from finetune_wb.errors import TrackingError
from finetune_wb.tracking.artifacts import ArtifactRef
from finetune_wb.tracking.lineage import add_lineage, link_input


def deployment_record(deployment: Any, **extra: Any) -> dict[str, Any]:
    """The deployment as plain JSON (a :class:`~finetune_wb.jobs.deployments.Deployment` or a dict)."""
    data = deployment.model_dump(mode="json") if hasattr(deployment, "model_dump") else dict(deployment)
    return scrub({**data, **extra})


def log_deployment(
    run: Any, deployment: Any, *, model_artifact: ArtifactRef | None = None, **extra: Any
) -> None:
    """Record ``deployment`` (and ``extra`` fields such as the account or the hourly fee) in ``run``."""
    if run is None:
        raise TrackingError("log_deployment needs a W&B run")
    record = deployment_record(deployment, **extra)
    run.config.update({"deployment": record}, allow_val_change=True)
    for key in ("name", "model", "sku", "state", "hosting_usd_per_hour"):
        if record.get(key) is not None:
            run.summary[f"deployment/{key}"] = record[key]
    if model_artifact is not None:
        link_input(run, model_artifact)
    add_lineage(
        run,
        "deployments",
        {"qualified_name": f"deployment/{record.get('name')}", "model": record.get("model"), **record},
    )
