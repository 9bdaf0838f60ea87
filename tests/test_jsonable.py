"""_jsonable: the one conversion to plain JSON values (state file, CLI --json)."""

from __future__ import annotations

import json

from finetune_wb._jsonable import to_jsonable
from finetune_wb.schema import JobSpec


def test_models_inside_containers_become_plain_json_and_keys_become_strings() -> None:
    spec = JobSpec(model="gpt-4o-mini-2024-07-18", n_epochs=2)
    out = to_jsonable({"spec": spec, 1: [spec, ("x", None)]})
    assert out["spec"]["model"] == "gpt-4o-mini-2024-07-18"
    assert out["1"][0] == out["spec"] and out["1"][1] == ["x", None]
    assert json.loads(json.dumps(out)) == out
