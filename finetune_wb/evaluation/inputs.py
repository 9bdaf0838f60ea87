"""Turning the ``examples=`` argument into ChatExamples: objects, dicts, a JSONL path or a W&B artifact."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb._paths import sha256_file
from finetune_wb.errors import EvaluationError

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.schema import ChatExample


@dataclass
class LoadedExamples:
    examples: list[ChatExample]
    source: str
    artifacts: list[Any] = field(default_factory=list)


def read_chat_jsonl(path: Path) -> list[ChatExample]:
    """Read a chat (or DPO) JSONL file; errors name the file and line."""
    from pydantic import ValidationError

    from finetune_wb.evaluation.eval_examples import (
        describe_validation_error,
        example_from_obj,
        looks_like_preference,
    )
    from finetune_wb.evaluation.requests import check_tools

    out: list[ChatExample] = []
    obj: Any
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            obj = None
            try:
                obj = json.loads(line)
                example = example_from_obj(obj)
            except (ValueError, ValidationError) as exc:
                kind = "preference (DPO) example" if looks_like_preference(obj) else "chat example"
                raise EvaluationError(
                    f"{path}:{line_no}: not a {kind} ({describe_validation_error(exc)}); each line needs "
                    '{"messages": [...]} ending with the assistant answer to compare against, or a DPO line '
                    '{"input": {"messages": [...]}, "preferred_output": [...], "non_preferred_output": [...]}'
                ) from None
            _check_prompt(example, f"{path}:{line_no}")
            check_tools(example, f"{path}:{line_no}")
            out.append(example)
    return out


def _check_prompt(example: ChatExample, where: str) -> None:
    if not example.prompt_messages():
        raise EvaluationError(
            f"{where}: nothing to ask: no message before the last assistant message; put the prompt (at "
            "least one user message) before the answer to compare against"
        )


def _jsonl_in(directory: Path, what: str) -> Path:
    files = sorted(directory.rglob("*.jsonl"))
    if not files:
        raise EvaluationError(f"{what} holds no .jsonl file (looked in {directory})")
    if len(files) > 1:
        preferred = [f for f in files if "test" in f.name or "eval" in f.name]
        if len(preferred) == 1:
            return preferred[0]
        raise EvaluationError(f"{what} holds several .jsonl files ({[f.name for f in files]}); pass one path")
    return files[0]


def _from_path(path: Path) -> list[ChatExample]:
    if not path.exists():
        raise EvaluationError(f"examples file {path} does not exist")
    if path.is_dir():
        path = _jsonl_in(path, f"directory {path}")
    return read_chat_jsonl(path)


def _is_wandb_artifact(obj: Any) -> bool:
    wandb = sys.modules.get("wandb")
    return wandb is not None and isinstance(obj, wandb.Artifact)


def _is_artifact_ref(obj: Any) -> bool:
    return hasattr(obj, "qualified_name") and hasattr(obj, "digest") and hasattr(obj, "metadata")


def _local_copy(metadata: dict[str, Any], digest: str | None) -> Path | None:
    """The file an artifact's metadata says this machine has, if it is still there and unchanged."""
    for key in ("local_path", "path", "source_path"):
        candidate = metadata.get(key)
        if not candidate:
            continue
        path = Path(str(candidate))
        if path.is_file() and (digest is None or sha256_file(path) == digest):
            return path
    return None


def _from_artifact_ref(ref: Any) -> list[ChatExample]:
    """An ArtifactRef from ``finetune_wb.tracking``: the local file it was logged from, else a download."""
    metadata = dict(getattr(ref, "metadata", None) or {})
    local = _local_copy(metadata, getattr(ref, "digest", None))
    if local is not None:
        return read_chat_jsonl(local)
    from finetune_wb.tracking.mode import is_offline

    if is_offline():
        raise EvaluationError(
            f"artifact {ref.qualified_name}: its data is not on this machine (metadata local_path missing or "
            "changed) and W&B is offline, so it cannot be downloaded; pass the JSONL path instead"
        )
    import wandb

    directory = Path(wandb.Api().artifact(ref.qualified_name).download())
    return _from_path(directory)


def _from_wandb_artifact(artifact: Any) -> list[ChatExample]:
    """A ``wandb.Artifact``: its files where they are on this machine, else ``artifact.download()``."""
    metadata = dict(getattr(artifact, "metadata", None) or {})
    local = _local_copy(metadata, metadata.get("sha256"))
    if local is not None:
        return read_chat_jsonl(local)
    try:
        entries = artifact.manifest.entries
    except Exception:  # a logged artifact from the API may need a download to have a manifest
        entries = {}
    files = [
        Path(e.local_path)
        for name, e in sorted(entries.items())
        if name.endswith(".jsonl") and getattr(e, "local_path", None) and Path(e.local_path).is_file()
    ]
    if len(files) == 1:
        return read_chat_jsonl(files[0])
    return _from_path(Path(artifact.download()))


def load_eval_examples(examples: Any) -> LoadedExamples:
    """Accept ChatExamples/dicts (chat or DPO), a path, a ``wandb.Artifact`` or an ``ArtifactRef``."""
    from finetune_wb.evaluation.eval_examples import describe_validation_error, example_from_obj
    from finetune_wb.evaluation.requests import check_tools
    from finetune_wb.schema import ChatExample, PreferenceExample

    if isinstance(examples, (str, Path)):
        path = Path(examples).expanduser()
        loaded = _from_path(path)
        if not loaded:
            raise EvaluationError(f"{path} holds no examples; each line needs a chat example to evaluate on")
        return LoadedExamples(loaded, source=str(path))
    if _is_wandb_artifact(examples):
        return LoadedExamples(
            _from_wandb_artifact(examples), source=f"artifact {examples.name}", artifacts=[examples]
        )
    if _is_artifact_ref(examples):
        return LoadedExamples(
            _from_artifact_ref(examples), source=f"artifact {examples.qualified_name}", artifacts=[examples]
        )
    try:
        items = list(examples)
    except TypeError:
        raise EvaluationError(
            f"examples must be ChatExamples, a JSONL path or a W&B artifact, not {type(examples).__name__}"
        ) from None
    out: list[ChatExample] = []
    for i, item in enumerate(items):
        if isinstance(item, ChatExample):
            out.append(item)
        elif isinstance(item, (dict, PreferenceExample)):
            try:
                out.append(example_from_obj(item))
            except ValueError as exc:
                raise EvaluationError(
                    f"examples[{i}] is not a chat or preference example: {describe_validation_error(exc)}"
                ) from None
        else:
            raise EvaluationError(f"examples[{i}] is a {type(item).__name__}; expected a ChatExample or dict")
        _check_prompt(out[-1], f"examples[{i}]")
        check_tools(out[-1], f"examples[{i}]")
    if not out:
        raise EvaluationError("no examples to evaluate")
    return LoadedExamples(out, source=f"{len(out)} examples in memory")
