"""The session's data steps: prepare the splits (or adopt your own files) and validate the training file.

Each step works on a :class:`~finetune_wb.session.context.StepContext`; the session's methods hold its lock
and call them. The splits are written beside the state file (``ctx.data_dir``) and their SHA-256 digests
go to the state, so that new data after an upload is refused instead of silently trained on. Each split
is written to a temporary file of its own (unique per writer) and renamed over the old one, so a reader —
another process, or an upload in progress — sees the old file or the new one, never half.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb._paths import sha256_file
from finetune_wb.errors import ConfigError, DataError
from finetune_wb.session.state import dump_obj

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.data.template import Template
    from finetune_wb.schema import ChatExample
    from finetune_wb.session.context import StepContext
    from finetune_wb.validation.validate import ValidationReport

logger = logging.getLogger("finetune_wb.session")


def as_template(template: Template | dict[str, Any]) -> Template:
    """``template`` as a :class:`~finetune_wb.data.template.Template`; a dict's unknown keys are an error."""
    from finetune_wb.data.template import Template

    if isinstance(template, dict):
        unknown = sorted(set(template) - set(Template.model_fields))
        if unknown:
            raise ConfigError(
                f"template has unknown key(s) {unknown}; a template takes {sorted(Template.model_fields)}"
            )
        return Template(**template)
    return template


def examples_of(records: Any, template: Template) -> list[ChatExample]:
    """Chat examples from ``records`` — or ``records`` itself when it already is a list of ChatExamples."""
    from finetune_wb.data.build import build_examples
    from finetune_wb.schema import ChatExample

    if isinstance(records, Sequence) and records and all(isinstance(r, ChatExample) for r in records):
        return list(records)
    return build_examples(records, template=template)


@contextlib.contextmanager
def _staging(directory: Path, name: str) -> Iterator[Path]:
    """A new temporary file beside ``directory/name``, unique to this writer; removed unless renamed away."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".new", dir=directory)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def prepare_step(
    ctx: StepContext,
    examples: list[ChatExample],
    *,
    template: Template,
    n_train: int | None,
    train_fraction: float | None,
    seed: int,
    stratify: bool,
    group_near_duplicates: bool = False,
) -> tuple[list[ChatExample], list[ChatExample]]:
    """Split ``examples``, write both splits beside the state file and record their digests.

    ``group_near_duplicates`` keeps exact and near-duplicate prompts on one side of the split."""
    from finetune_wb.data.build import split_examples
    from finetune_wb.data.jsonl import write_jsonl

    if not examples:
        raise DataError("prepare got no records: pass a non-empty list, DataFrame, Dataset or file")
    if n_train is None and train_fraction is None:
        train_fraction = 0.8
    groups = None
    if group_near_duplicates:
        from finetune_wb.validation.quality.groups import near_duplicate_groups

        groups = near_duplicate_groups(examples)
    train, test = split_examples(
        examples, n_train=n_train, train_fraction=train_fraction, seed=seed, stratify=stratify, groups=groups
    )
    data_dir = ctx.data_dir
    train_path, test_path = data_dir / "train.jsonl", data_dir / "test.jsonl"
    with (
        _staging(data_dir, train_path.name) as staged_train,
        _staging(data_dir, test_path.name) as staged_test,
    ):
        write_jsonl(train, staged_train)
        write_jsonl(test, staged_test)
        train_digest, test_digest = sha256_file(staged_train), sha256_file(staged_test)
        st = ctx.state
        if st.train_digest is not None and (st.train_digest, st.test_digest) != (train_digest, test_digest):
            if st.training_file_id or st.job_id:
                raise ConfigError(
                    f"session {st.session_id} ({ctx.state_path}) already uploaded other training data "
                    f"(sha256 {st.train_digest[:12]}); start a new session (another state_path) for new data"
                )
            st.validation = None
            ctx.report = None
        os.replace(staged_train, train_path)
        os.replace(staged_test, test_path)
    st.template = dump_obj(template)
    st.split = {"n_train": n_train, "train_fraction": train_fraction, "seed": seed, "stratify": stratify}
    if group_near_duplicates:
        st.split["group_near_duplicates"] = True
    st.train_path, st.test_path = str(train_path), str(test_path)
    st.train_digest, st.test_digest = train_digest, test_digest
    st.n_train, st.n_test = len(train), len(test)
    ctx.save()
    logger.info(
        "prepared %d train / %d test examples (train sha256 %s)", len(train), len(test), train_digest[:12]
    )
    return list(train), list(test)


def use_files_step(ctx: StepContext, train: Path, test: Path | None) -> None:
    """Copy JSONL files of chat examples built elsewhere into the session's data directory."""
    st = ctx.state
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    targets = {"train": train, **({"test": test} if test is not None else {})}
    for split, src in targets.items():
        if not src.is_file():
            raise ConfigError(f"{src}: no such {split} file")
        digest = sha256_file(src)
        old = getattr(st, f"{split}_digest")
        if split == "train" and old not in (None, digest) and (st.training_file_id or st.job_id):
            raise ConfigError(
                f"session {st.session_id} ({ctx.state_path}) already uploaded other training "
                f"data than {src}; start a new session (another state_path) for new data"
            )
        dest = ctx.data_dir / f"{split}.jsonl"
        if src.resolve() != dest.resolve():
            with _staging(ctx.data_dir, dest.name) as staged:
                shutil.copyfile(src, staged)
                os.replace(staged, dest)
        setattr(st, f"{split}_path", str(dest))
        setattr(st, f"{split}_digest", digest)
        with dest.open("rb") as fh:
            setattr(st, f"n_{split}", sum(1 for line in fh if line.strip()))
    ctx.save()


def validate_step(
    ctx: StepContext,
    *,
    model: str | None = None,
    n_epochs: int | None = None,
    max_cost: float | None = None,
    raise_on_error: bool = True,
) -> ValidationReport:
    """Validate the training file, keep the report in ``ctx.report`` and its numbers in the state."""
    from finetune_wb.validation.validate import DEFAULT_MODEL, validate_file

    st = ctx.state
    path = ctx.require_path("train")
    model = model or (st.spec or {}).get("model") or DEFAULT_MODEL
    report = validate_file(path, model=model, n_epochs=n_epochs, max_cost=max_cost)
    ctx.report = report
    tokens = getattr(report, "tokens", None)
    st.validation = {
        "ok": bool(report.ok),
        "model": model,
        "digest": st.train_digest,
        "n_examples": report.n_examples,
        "n_errors": len(report.errors),
        "n_warnings": len(report.issues) - len(report.errors),
        "n_epochs": getattr(report, "n_epochs", None),
        "billed_tokens": getattr(tokens, "billed", None),
        "total_tokens": getattr(tokens, "total", None),
        "estimated_cost_usd": getattr(report, "estimated_cost_usd", None),
    }
    ctx.save()
    logger.info("validation: %s", report.summary().splitlines()[0] if report.summary() else report.ok)
    if raise_on_error:
        report.raise_for_errors()
    return report
