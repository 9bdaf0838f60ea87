"""Records in, conversations out: read records, apply a Template, split train/test, read and write JSONL.

Records can be a list of dicts, a pandas DataFrame, a Hugging Face ``Dataset``/``DatasetDict``, or a path to a
JSONL, JSON, CSV or TSV file; :func:`read_records` is the one file reader (the session and ``finetune-wb run``
both use it). The bundled demo dataset lives here too (:mod:`.demo_dataset`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Template": ".template",
    "build_examples": ".build",
    "instruction_from_prompt": ".template",
    "load_examples": ".jsonl",
    "load_hf_records": ".records",
    "read_jsonl": ".jsonl",
    "read_records": ".records",
    "split_examples": ".build",
    "write_jsonl": ".jsonl",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.data.build import build_examples as build_examples, split_examples as split_examples
    from finetune_wb.data.jsonl import (
        load_examples as load_examples,
        read_jsonl as read_jsonl,
        write_jsonl as write_jsonl,
    )
    from finetune_wb.data.records import load_hf_records as load_hf_records, read_records as read_records
    from finetune_wb.data.template import (
        Template as Template,
        instruction_from_prompt as instruction_from_prompt,
    )
