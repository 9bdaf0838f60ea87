"""Import order that keeps validate_file's peak memory low (see docs/data.md, "Streaming and performance").

The two big fixed costs of a validation are the tokenizer (its Rust tables, plus a Python dict of ranks
while it is being built) and pydantic with the report models. ``finetune_wb.validation.validate`` loads the report
models only when it builds the report, after the tokenizer's temporary dict is gone, so the two never stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHECK = r"""
import json, sys
import finetune_wb.validation.validate as v
before = "pydantic" in sys.modules
report = v.validate_file(sys.argv[1])
from finetune_wb.validation.validate import ValidationIssue, ValidationReport
print(json.dumps({
    "pydantic_at_import": before,
    "report_type": type(report) is ValidationReport,
    "issue_type": ValidationIssue.__name__,
    "n": report.n_examples,
}))
"""


def test_validate_module_loads_pydantic_only_when_building_the_report(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    line = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path.write_text((json.dumps(line) + "\n") * 10)
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "pydantic_at_import": False,
        "report_type": True,
        "issue_type": "ValidationIssue",
        "n": 10,
    }


def test_unknown_attribute_of_the_validate_module_is_an_attribute_error() -> None:
    import finetune_wb.validation.validate as v

    assert not hasattr(v, "NoSuchThing")
