"""`finetune-wb link`: the lineage offline runs recorded becomes real `use_artifact` edges, once online.

W&B's public API is replaced by a fake (``api=``): nothing here reaches the network.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from finetune_wb.cli import main

SHA_TRAIN, SHA_MODEL, SHA_OTHER = "a" * 64, "b" * 64, "c" * 64


@dataclass
class FakeArtifact:
    name: str
    type: str
    metadata: dict[str, Any]
    aliases: list[str]
    digest: str = "wdigest"


@dataclass
class FakeRun:
    id: str
    config: dict[str, Any]
    used: list[FakeArtifact] = field(default_factory=list)

    def used_artifacts(self) -> list[FakeArtifact]:
        return list(self.used)

    def use_artifact(self, artifact: FakeArtifact) -> FakeArtifact:
        self.used.append(artifact)
        return artifact


class FakeApi:
    """``runs(path)`` and ``artifact(name, type)`` over artifacts stored as ``entity/project/name:alias``."""

    default_entity = "acme"

    def __init__(self, runs: dict[str, list[FakeRun]], artifacts: dict[str, FakeArtifact]) -> None:
        self._runs, self._artifacts, self.lookups = runs, artifacts, []

    def runs(self, path: str) -> list[FakeRun]:
        return self._runs.get(path, [])

    def artifact(self, name: str, type: str | None = None) -> FakeArtifact:
        self.lookups.append(name)
        if name not in self._artifacts:
            raise ValueError(f"artifact {name} not found")
        return self._artifacts[name]


def _art(name: str, type_: str, sha: str, version: str = "v0") -> FakeArtifact:
    return FakeArtifact(
        name=f"{name}:{version}", type=type_, metadata={"sha256": sha}, aliases=[version, sha]
    )


def _entry(name: str, type_: str, sha: str) -> dict[str, Any]:
    return {"name": name, "type": type_, "sha256": sha, "qualified_name": f"{name}:{sha}"}


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)


def _world() -> FakeApi:
    train, model = _art("legal-train", "dataset", SHA_TRAIN), _art("model-ftjob-1", "model", SHA_MODEL)
    artifacts = {
        f"acme/legal/legal-train:{SHA_TRAIN}": train,
        f"acme/legal/model-ftjob-1:{SHA_MODEL}": model,
        # the same name, in another project, with other content: never a candidate
        f"acme/other/legal-test:{SHA_OTHER}": _art("legal-test", "dataset", SHA_OTHER),
        f"acme/legal/legal-stale:{SHA_OTHER}": _art("legal-stale", "dataset", SHA_TRAIN),
    }
    fine_tune = FakeRun("ft1", {"lineage": {"inputs": [_entry("legal-train", "dataset", SHA_TRAIN)]}})
    evaluation = FakeRun(
        "ev1",
        {
            "lineage": {
                "inputs": [
                    _entry("model-ftjob-1", "model", SHA_MODEL),
                    _entry("legal-test", "dataset", SHA_OTHER),
                ]
            }
        },
    )
    return FakeApi({"acme/legal": [fine_tune, evaluation, FakeRun("plain", {})]}, artifacts)


def test_link_replays_recorded_inputs_once_and_only_from_the_runs_project(online: None) -> None:
    from finetune_wb.tracking.lineage import replay_lineage

    api = _world()
    rows = replay_lineage(project="legal", api=api)
    assert [(r["run"], r["artifact"], r["outcome"]) for r in rows] == [
        ("ft1", "legal-train", "linked"),
        ("ev1", "model-ftjob-1", "linked"),
        ("ev1", "legal-test", "not_found"),  # it exists only in project "other"
    ]
    assert "wandb sync" in rows[2]["detail"]
    (ft_run, ev_run, _) = api.runs("acme/legal")
    assert [a.name for a in ft_run.used] == ["legal-train:v0"]
    assert [a.name for a in ev_run.used] == ["model-ftjob-1:v0"]
    assert not any("acme/other" in name for name in api.lookups)

    again = replay_lineage(project="legal", api=api)  # idempotent: nothing is used twice
    assert [r["outcome"] for r in again] == ["already_linked", "already_linked", "not_found"]
    assert len(ft_run.used) == 1 and len(ev_run.used) == 1


def test_link_refuses_an_artifact_of_other_content(online: None) -> None:
    from finetune_wb.tracking.lineage import replay_lineage

    api = _world()
    run = FakeRun("r2", {"lineage": {"inputs": [_entry("legal-stale", "dataset", SHA_OTHER)]}})
    api._runs["acme/legal"] = [run]
    (row,) = replay_lineage(project="legal", api=api)
    assert row["outcome"] == "mismatch" and SHA_TRAIN in row["detail"]
    assert run.used == []


def test_link_cli_exit_codes(online: None, capsys: pytest.CaptureFixture[str]) -> None:
    from finetune_wb.cli.link import run_link

    args = argparse.Namespace(project="legal", entity=None, json=True)
    assert run_link(args, api=_world()) == 1  # legal-test could not be linked
    out = json.loads(capsys.readouterr().out)
    assert out["n_linked"] == 2 and {r["outcome"] for r in out["links"]} == {"linked", "not_found"}
    api = _world()
    api._runs["acme/legal"] = api._runs["acme/legal"][:1]
    assert run_link(argparse.Namespace(project="legal", entity=None, json=False), api=api) == 0
    assert "ft1: legal-train linked" in capsys.readouterr().out


def test_link_offline_says_it_needs_online_wandb(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert main(["link", "--project", "legal"]) == 2
    assert "needs online W&B" in capsys.readouterr().err
