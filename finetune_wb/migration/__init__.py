"""Before a base model retires: find the fine-tunes at risk, record their answers, pick a replacement on data.

* :func:`retirements` (:mod:`.inventory`): every fine-tuned model the key can see, its shutdown date (the
  server's ``shutdown_date`` first, else :mod:`finetune_wb.retirement_dates`), days left, status, whether W&B
  holds its lineage, and what to do next.
* :func:`snapshot` (:mod:`.snapshots`): ask a fine-tune every prompt of a chat JSONL through the evaluation
  engine (cached, resumable) and write a golden set (:mod:`.golden`), logged as a ``golden-set`` artifact.
* :func:`parse_candidate` / :func:`build_candidates` (:mod:`.candidates`): prompt-only replacements, a
  model plus ``fewshot:K`` (fixed, representative) or ``retrieval:K`` (per prompt) examples from the
  fine-tune's training file.
* :func:`migrate` (:mod:`.report`): score candidates on the golden set (:mod:`.scores`), rank them and
  recommend one; :mod:`.render` writes the text, Markdown, HTML and W&B views.

See ``docs/migrating.md``. Names load lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Candidate": ".candidates",
    "CandidateResult": ".report",
    "CandidateSpec": ".candidates",
    "CostEstimate": ".snapshots",
    "MigrationError": ".errors",
    "MigrationInputError": ".errors",
    "MigrationReport": ".report",
    "ModelNotFoundError": ".errors",
    "ModelRetirement": ".inventory",
    "ModelShutDownError": ".errors",
    "RetirementInventory": ".inventory",
    "SnapshotResult": ".snapshots",
    "build_candidates": ".candidates",
    "migrate": ".report",
    "parse_candidate": ".candidates",
    "read_golden": ".golden",
    "read_prompts": ".golden",
    "retirements": ".inventory",
    "snapshot": ".snapshots",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.migration.candidates import (
        Candidate as Candidate,
        CandidateSpec as CandidateSpec,
        build_candidates as build_candidates,
        parse_candidate as parse_candidate,
    )
    from finetune_wb.migration.errors import (
        MigrationError as MigrationError,
        MigrationInputError as MigrationInputError,
        ModelNotFoundError as ModelNotFoundError,
        ModelShutDownError as ModelShutDownError,
    )
    from finetune_wb.migration.golden import read_golden as read_golden, read_prompts as read_prompts
    from finetune_wb.migration.inventory import (
        ModelRetirement as ModelRetirement,
        RetirementInventory as RetirementInventory,
        retirements as retirements,
    )
    from finetune_wb.migration.report import (
        CandidateResult as CandidateResult,
        MigrationReport as MigrationReport,
        migrate as migrate,
    )
    from finetune_wb.migration.snapshots import (
        CostEstimate as CostEstimate,
        SnapshotResult as SnapshotResult,
        snapshot as snapshot,
    )
