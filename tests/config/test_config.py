from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_wb.config.model import RunConfig
from finetune_wb.data.records import read_records
from finetune_wb.errors import ConfigError, DataError

TOML = """
project = "contract-nli"
entity = "team"
wandb_mode = "offline"
state_path = "state/run.json"

[data]
path = "records.jsonl"
where = { split = "train" }

[template]
system = "Answer Yes or No."
user = "Clause: {text}"

[split]
n_train = 2
seed = 7

[job]
model = "gpt-4o-mini-2024-07-18"
n_epochs = 3

[evaluation]
baselines = ["gpt-4o-mini-2024-07-18"]
evaluators = ["exact_match", { name = "classification", labels = ["Yes", "No"] }]
concurrency = 4
"""


def _records(tmp_path: Path) -> Path:
    path = tmp_path / "records.jsonl"
    rows = [
        {"split": "train", "text": "a", "answer": "Yes"},
        {"split": "train", "text": "b", "answer": "No"},
        {"split": "test", "text": "c", "answer": "No"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_toml_round_trip_and_relative_paths(tmp_path: Path) -> None:
    _records(tmp_path)
    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text(TOML, encoding="utf-8")
    cfg = RunConfig.load(cfg_path)
    assert cfg.project == "contract-nli" and cfg.entity == "team" and cfg.wandb_mode == "offline"
    assert cfg.resolved_state_path() == tmp_path / "state" / "run.json"
    assert cfg.split.n_train == 2 and cfg.split.seed == 7 and cfg.split.train_fraction is None
    assert cfg.template.assistant == "{answer}"
    assert [e.name for e in cfg.evaluation.evaluators] == ["exact_match", "classification"]
    assert cfg.evaluation.evaluators[1].kwargs == {"labels": ["Yes", "No"]}
    records = cfg.load_records()
    assert [r["text"] for r in records] == ["a", "b"]  # `where` filtered the test row out


def test_yaml_equivalent(tmp_path: Path) -> None:
    _records(tmp_path)
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(
        "project: p\ndata:\n  path: records.jsonl\n  limit: 1\nsplit:\n  train_fraction: 0.5\n"
        "job:\n  model: gpt-4o-mini-2024-07-18\n",
        encoding="utf-8",
    )
    cfg = RunConfig.load(cfg_path)
    assert cfg.split.train_fraction == 0.5 and cfg.split.n_train is None
    assert len(cfg.load_records()) == 1


def test_demo_source() -> None:
    cfg = RunConfig.from_dict({"data": {"demo": True}})
    records = cfg.load_records()
    assert len(records) == 120 and {r["answer"] for r in records} == {"Yes", "No"}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('[data]\npath = "x.jsonl"\n[jbo]\nmodel = "m"\n', "jbo"),  # typo in a section name
        ('[data]\ndemo = true\npath = "x.jsonl"\n', "exactly one"),
        ("[data]\n", "exactly one"),
        ("[data]\ndemo = true\n[split]\nn_train = 3\ntrain_fraction = 0.5\n", "exactly one of n_train"),
        ("[data]\ndemo = true\n[evaluation]\nconcurrency = 0\n", "evaluation.concurrency"),
        ("[data\n", "invalid TOML"),
    ],
)
def test_invalid_configs_name_the_problem(tmp_path: Path, body: str, needle: str) -> None:
    cfg_path = tmp_path / "bad.toml"
    cfg_path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        RunConfig.load(cfg_path)
    assert needle in str(info.value)
    assert "bad.toml" in str(info.value)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        RunConfig.load(tmp_path / "nope.toml")
    other = tmp_path / "run.ini"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown config format"):
        RunConfig.load(other)


def test_config_data_is_read_by_the_data_stages_reader(tmp_path: Path) -> None:
    """``[data] path`` goes through :func:`finetune_wb.data.read_records`; its problems become ConfigErrors."""
    tsv = tmp_path / "r.tsv"
    tsv.write_text("text\tanswer\nhello\tYes\n", encoding="utf-8")
    cfg = RunConfig.from_dict({"data": {"path": "r.tsv"}, "base_dir": str(tmp_path)})
    assert cfg.load_records() == read_records(tsv) == [{"text": "hello", "answer": "Yes"}]

    bad = tmp_path / "r.jsonl"
    bad.write_text('{"text": "a"}\n{oops\n', encoding="utf-8")
    cfg = RunConfig.from_dict({"data": {"path": "r.jsonl"}, "base_dir": str(tmp_path)})
    with pytest.raises(DataError, match=r"r\.jsonl:2"):
        read_records(bad)
    with pytest.raises(ConfigError, match=r"r\.jsonl:2: not a valid UTF-8 JSON line"):
        cfg.load_records()
    bad.unlink()  # gone after the config was loaded
    with pytest.raises(ConfigError, match=r"r\.jsonl does not exist"):
        cfg.load_records()

    array = tmp_path / "r.json"
    array.write_text('[{"text": "a", "answer": "Yes"},\n {"text": "b", "answer": oops}]', encoding="utf-8")
    cfg = RunConfig.from_dict({"data": {"path": "r.json"}, "base_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"r\.json:2: not valid JSON"):
        cfg.load_records()


def test_empty_selection_is_an_error(tmp_path: Path) -> None:
    _records(tmp_path)
    cfg = RunConfig.from_dict(
        {"data": {"path": "records.jsonl", "where": {"split": "dev"}}, "base_dir": str(tmp_path)}
    )
    with pytest.raises(ConfigError, match="no records"):
        cfg.load_records()


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        # caught at load, before any data is read or any money is spent
        ('[data]\ndemo = true\n[job]\nn_epochs = "three"\n', ["job.n_epochs", "'three'"]),
        ("[data]\ndemo = true\n[job]\nepochs = 3\n", ["job.epochs", "unknown key", "n_epochs"]),
        (
            '[data]\ndemo = true\n[evaluation]\nevaluators = ["exact_match", "exact_matc"]\n',
            ["evaluators[1]"],
        ),
        (
            '[data]\ndemo = true\n[evaluation]\nevaluators = [{ name = "classification", label = ["Y"] }]\n',
            ["evaluation.evaluators[0]", "classification"],
        ),
        ('[data]\npath = "missing.jsonl"\n', ["data.path", "missing.jsonl", "no such file"]),
        ("[data]\ndemo = true\nbogus = 1\n", ["data.bogus", "unknown key", "hf_dataset"]),
    ],
)
def test_content_errors_name_file_and_key_at_load(tmp_path: Path, body: str, needles: list[str]) -> None:
    cfg_path = tmp_path / "bad.toml"
    cfg_path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        RunConfig.load(cfg_path)
    for needle in ["bad.toml", *needles]:
        assert needle in str(info.value)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    cfg_path = tmp_path / "bad.yaml"
    cfg_path.write_text("data:\n  demo: true\n\tjob: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml:3:1: invalid YAML"):
        RunConfig.load(cfg_path)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ('[template]\nuser = "Clause: {txet}"\n', r"run\.toml: template: .*txet"),
        ("[split]\nn_train = 500\n", r"run\.toml: split: n_train must be between"),
        ('[data.where]\nanswer = "Maybe"\n', r"run\.toml: data: .*selected no records"),
    ],
)
def test_problems_found_with_the_data_name_file_and_key(tmp_path: Path, extra: str, needle: str) -> None:
    from finetune_wb.session.config_runner import run_config

    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text('wandb_mode = "disabled"\n[data]\ndemo = true\n' + extra, encoding="utf-8")
    config = RunConfig.load(cfg_path)
    with pytest.raises(ConfigError, match=needle):
        run_config(config, state_path=tmp_path / "s.json")  # the conftest client points at a closed port


def test_a_wandb_table_is_the_same_as_the_top_level_keys(tmp_path: Path) -> None:
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(
        "data: {demo: true}\nwandb: {project: contracts, entity: team, mode: offline}\n", encoding="utf-8"
    )
    cfg = RunConfig.load(cfg_path)
    assert (cfg.project, cfg.entity, cfg.wandb_mode) == ("contracts", "team", "offline")
    for body, needle in [
        ('project = "a"\n[wandb]\nproject = "b"\n[data]\ndemo = true\n', "keep one"),
        ('[wandb]\nproj = "b"\n[data]\ndemo = true\n', "['proj']"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            RunConfig.load(bad)
        assert "bad.toml" in str(info.value) and needle in str(info.value)
        assert "Value error" not in str(info.value)


def test_evaluator_specs_and_custom_evaluators_from_a_file_beside_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_evals.py").write_text(
        "from finetune_wb.evaluation import evaluator\n\n\n"
        "@evaluator\ndef short(output: str) -> bool:\n    return len(output.split()) <= 3\n",
        encoding="utf-8",
    )
    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text(
        '[data]\ndemo = true\n[evaluation]\nevaluators = ["contains:Yes", "my_evals.py:short", "exact_match"]\n',
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the file is found beside the config, not in the current directory
    evaluators = RunConfig.load(cfg_path).build_evaluators()
    from finetune_wb import evaluation

    assert [getattr(e, "name", None) for e in evaluators[:2]] == ["contains", "short"]
    assert evaluators[2] is evaluation.exact_match

    cfg_path.write_text(
        '[data]\ndemo = true\n[evaluation]\nevaluators = ["my_evals.py:nope"]\n', encoding="utf-8"
    )
    with pytest.raises(
        ConfigError, match=r"run\.toml: invalid run config:\n  evaluation\.evaluators\[0\]: .*nope"
    ):
        RunConfig.load(cfg_path)
