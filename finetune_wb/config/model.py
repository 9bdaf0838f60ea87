"""Run configuration for ``finetune-wb run CONFIG``: one TOML or YAML file describes a whole run.

A config names the data (the shipped demo set, a local JSONL/CSV/TSV file, or a Hugging Face dataset), the
chat template, the split, the :class:`~finetune_wb.schema.JobSpec`, the evaluation (evaluators, baselines)
and the W&B project. Relative paths are resolved against the config file's directory. Unknown keys are
errors, so a typo never silently falls back to a default.

Example (TOML)::

    project = "contract-nli"

    [data]
    path = "data/clauses.jsonl"

    [template]
    system = "Answer Yes or No."
    user = "Clause: {text}"
    assistant = "{answer}"

    [split]
    n_train = 30
    seed = 42

    [job]
    model = "gpt-4o-mini-2024-07-18"
    n_epochs = 3

    [evaluation]
    baselines = ["gpt-4o-mini-2024-07-18"]
    evaluators = ["exact_match", { name = "classification", labels = ["Yes", "No"] }]

    # optional: the data-quality gate before the upload (default: mode = "check", stop on errors)
    [quality]
    accept = ["personal_data"]

    # optional: on Azure OpenAI, the fine-tune is deployed (Developer tier) before it is evaluated
    [azure]
    deployment = "contract-nli-eval"
    undeploy = true
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from finetune_wb.config.files import parse_toml, parse_yaml, resolve_evaluator
from finetune_wb.data.records import load_hf_records, read_records
from finetune_wb.errors import ConfigError, DataError

_STRICT = ConfigDict(extra="forbid")


class DataConfig(BaseModel):
    """Where the labelled records come from. Exactly one of ``demo``, ``path`` or ``hf_dataset``."""

    model_config = _STRICT

    demo: bool = Field(False, description="use the dataset that ships with the package")
    path: str | None = Field(
        None, description="JSONL, JSON array, CSV or TSV file of records (relative to the config)"
    )
    hf_dataset: str | None = Field(None, description='Hugging Face dataset id, e.g. "nguha/legalbench"')
    hf_config: str | None = Field(None, description="Hugging Face dataset configuration name")
    hf_splits: list[str] = Field(default_factory=lambda: ["train", "test"], description="splits to combine")
    where: dict[str, Any] = Field(default_factory=dict, description="keep records whose fields equal these")
    limit: int | None = Field(None, ge=1, description="keep at most this many records (after `where`)")

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        chosen = [
            name
            for name, on in (("demo", self.demo), ("path", self.path), ("hf_dataset", self.hf_dataset))
            if on
        ]
        if len(chosen) != 1:
            raise ValueError(
                f"[data] needs exactly one of demo = true, path = ..., hf_dataset = ... (got {chosen or 'none'})"
            )
        return self


class TemplateConfig(BaseModel):
    """The chat template: a field name or a ``str.format`` string per message."""

    model_config = _STRICT

    system: str | None = None
    user: str = "{text}"
    assistant: str = "{answer}"


class SplitConfig(BaseModel):
    """How records are split into train and test (seeded, stratified by the assistant answer)."""

    model_config = _STRICT

    n_train: int | None = Field(30, ge=1)
    train_fraction: float | None = Field(None, gt=0.0, lt=1.0)
    seed: int = 42
    stratify: bool = True
    group_near_duplicates: bool = Field(
        False, description="keep exact and near-duplicate prompts on one side of the split (no leakage)"
    )

    @model_validator(mode="after")
    def _one_size(self) -> SplitConfig:
        if self.train_fraction is not None and "n_train" not in self.model_fields_set:
            self.n_train = None
        if (self.n_train is None) == (self.train_fraction is None):
            raise ValueError("[split] needs exactly one of n_train or train_fraction")
        return self


class QualityConfig(BaseModel):
    """The data-quality gate run before the upload (see docs/data.md, "Data quality").

    ``mode``: "check" stops the run on an error finding (leakage, secrets) not in ``accept``; "warn" only
    logs it; "off" skips the checks. The other keys are :func:`~finetune_wb.validation.quality.check_quality`'s
    options.
    """

    model_config = _STRICT

    mode: Literal["check", "warn", "off"] = "check"
    accept: list[str] = Field(default_factory=list, description="finding codes accepted knowingly")
    near_duplicate_threshold: float | None = Field(None, gt=0.0, le=1.0)
    max_label_share: float | None = Field(None, gt=0.0, le=1.0)
    allow: list[str] = Field(default_factory=list, description="regular expressions of allowed matches")
    severity: dict[str, Literal["error", "warning", "off"]] = Field(default_factory=dict)
    near_leakage_severity: Literal["error", "warning", "off"] | None = None

    def options(self) -> dict[str, Any]:
        """The keyword arguments for ``check_quality`` (only what the config sets)."""
        out: dict[str, Any] = {}
        for key in ("near_duplicate_threshold", "max_label_share", "near_leakage_severity"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.allow:
            out["allow"] = list(self.allow)
        if self.severity:
            out["severity"] = dict(self.severity)
        return out

    def problems(self) -> list[tuple[str, str]]:
        """Unknown finding codes and allow patterns that are not regular expressions."""
        import re

        from finetune_wb.validation.quality_report import CODES

        found: list[tuple[str, str]] = []
        for key, codes in (("quality.accept", self.accept), ("quality.severity", list(self.severity))):
            unknown = [c for c in codes if c not in CODES]
            if unknown:
                found.append((key, f"unknown finding code(s) {unknown}; the codes are {sorted(CODES)}"))
        for i, pattern in enumerate(self.allow):
            try:
                re.compile(pattern)
            except re.error as exc:
                found.append((f"quality.allow[{i}]", f"{pattern!r} is not a regular expression: {exc}"))
        return found


class EvaluatorConfig(BaseModel):
    """One evaluator by name (a built-in of :mod:`finetune_wb.evaluation`) with its keyword arguments."""

    model_config = ConfigDict(extra="allow")

    name: str

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EvaluationConfig(BaseModel):
    """What the evaluation compares and how it scores."""

    model_config = _STRICT

    baselines: list[str] = Field(default_factory=list, description="models compared with the fine-tune")
    evaluators: list[EvaluatorConfig] = Field(
        default_factory=lambda: [EvaluatorConfig(name="exact_match")],
        description='names ("exact_match") or tables ({name = "classification", labels = [...]})',
    )
    concurrency: int | None = Field(None, ge=1, description="requests in flight (default: evaluate's)")
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    max_tokens: int = Field(256, ge=1)
    temperature: float = 0.0
    skip: bool = Field(False, description="stop after the job (no evaluation)")

    @model_validator(mode="before")
    @classmethod
    def _names_to_tables(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("evaluators"), list):
            data = dict(data)
            data["evaluators"] = [{"name": e} if isinstance(e, str) else e for e in data["evaluators"]]
        return data


class AzureConfig(BaseModel):
    """``[azure]``: run on Azure OpenAI: the client, and the deployment the fine-tune is evaluated through.

    Every location field left out is read from the environment (``AZURE_OPENAI_ENDPOINT``,
    ``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``, ``AZURE_OPENAI_ACCOUNT``, ``AZURE_MANAGEMENT_URL``);
    keys and tokens never go in the file (``AZURE_OPENAI_API_KEY``, ``AZURE_MANAGEMENT_TOKEN`` or
    azure-identity).
    """

    model_config = _STRICT

    endpoint: str | None = Field(
        None, description="https://RESOURCE.openai.azure.com (AZURE_OPENAI_ENDPOINT)"
    )
    api_version: str = Field("2024-10-21", description="data-plane api-version of the classic routes")
    v1: bool = Field(False, description="use the /openai/v1/ routes through a plain OpenAI client")
    subscription: str | None = None
    resource_group: str | None = None
    account: str | None = None
    management_url: str | None = None
    deployment: str | None = Field(None, description="deployment name (default: ft-<session id>)")
    sku: Literal["developer", "standard", "globalstandard"] = "developer"
    capacity: int | None = Field(None, ge=1, description="thousands of tokens per minute (default 50)")
    undeploy: bool = Field(False, description="delete the deployment after the evaluation")


class RunConfig(BaseModel):
    """Everything ``finetune-wb run`` needs. Load with :meth:`RunConfig.load`."""

    model_config = _STRICT

    project: str = Field("finetune-wb", description="W&B project")
    entity: str | None = Field(None, description="W&B entity (team or user)")
    wandb_mode: Literal["online", "offline", "disabled"] | None = None
    state_path: str | None = Field(None, description="session state file (relative to the config)")
    data: DataConfig
    template: TemplateConfig = Field(default_factory=TemplateConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    job: dict[str, Any] = Field(default_factory=dict, description="JobSpec fields (model, n_epochs, ...)")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    azure: AzureConfig | None = Field(None, description="run on Azure OpenAI: fine-tune, deploy, evaluate")
    base_dir: str = Field(".", description="directory that relative paths are resolved against")
    source_path: str | None = Field(None, description="the file this config was read from (set by load)")

    @model_validator(mode="before")
    @classmethod
    def _wandb_table(cls, data: Any) -> Any:
        """``[wandb]`` with ``project``, ``entity``, ``mode`` is the same as the top-level keys."""
        if not isinstance(data, dict) or "wandb" not in data:
            return data
        table = data["wandb"]
        if not isinstance(table, dict):
            raise ValueError("[wandb] must be a table of project, entity and mode")
        data = {k: v for k, v in data.items() if k != "wandb"}
        for key, top in (("project", "project"), ("entity", "entity"), ("mode", "wandb_mode")):
            if key in table:
                if top in data:
                    raise ValueError(f"{top} is set both at the top level and as wandb.{key}; keep one")
                data[top] = table[key]
        unknown = sorted(set(table) - {"project", "entity", "mode"})
        if unknown:
            raise ValueError(f"[wandb] takes project, entity and mode, not {unknown}")
        return data

    # -- loading -----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a ``.toml``, ``.yaml`` or ``.yml`` file. Errors name the file and the bad key."""
        path = Path(path)
        try:
            raw_text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc})") from exc
        suffix = path.suffix.lower()
        if suffix == ".toml":
            data = parse_toml(raw_text, path)
        elif suffix in {".yaml", ".yml"}:
            data = parse_yaml(raw_text, path)
        else:
            raise ConfigError(f"{path}: unknown config format {suffix!r}; use .toml, .yaml or .yml")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the config must be a table/mapping at the top level")
        data.setdefault("base_dir", str(path.resolve().parent))
        data.setdefault("source_path", str(path.resolve()))
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<config>") -> RunConfig:
        """Validate a mapping; pydantic errors become a :class:`ConfigError` listing each bad key."""
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            problems = [(_dotted(err["loc"]), _message(err)) for err in exc.errors()]
            raise ConfigError(_problems_text(source, problems)) from exc
        problems = config._content_problems()
        if problems:
            raise ConfigError(_problems_text(source, problems))
        return config

    def _content_problems(self) -> list[tuple[str, str]]:
        """What the schema alone cannot catch, found before anything is spent: the ``[job]`` table as a
        JobSpec, the evaluator names and arguments, and a local data file that does not exist."""
        from finetune_wb.schema import JobSpec

        problems: list[tuple[str, str]] = []
        try:
            JobSpec(**self.job)
        except ValidationError as exc:
            problems += [
                (
                    _dotted(("job", *err["loc"])),
                    "unknown key; [job] takes the fields of JobSpec: " + ", ".join(JobSpec.model_fields)
                    if err["type"] == "extra_forbidden"
                    else str(err["msg"]).removeprefix("Value error, "),
                )
                for err in exc.errors()
            ]
        except TypeError as exc:
            problems.append(("job", str(exc)))
        for i, ev in enumerate(self.evaluation.evaluators):
            try:
                resolve_evaluator(ev.name, ev.kwargs, base_dir=self.base_dir)
            except ConfigError as exc:
                problems.append((f"evaluation.evaluators[{i}]", str(exc)))
        problems += self.quality.problems()
        if self.data.path and not self.resolve(self.data.path).is_file():
            problems.append(("data.path", f"{self.resolve(self.data.path)}: no such file"))
        return problems

    # -- helpers used by the runner ----------------------------------------------------------------------
    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's directory unless absolute."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def resolved_state_path(self) -> Path | None:
        """``state_path`` from the config, else ``<config stem>.state.json`` beside the config file."""
        if self.state_path:
            return self.resolve(self.state_path)
        if self.source_path:
            source = Path(self.source_path)
            return source.with_name(f"{source.stem}.state.json")
        return None

    def job_spec(self) -> Any:
        """The ``[job]`` table as a :class:`~finetune_wb.schema.JobSpec`."""
        from finetune_wb.schema import JobSpec

        try:
            return JobSpec(**self.job)
        except (ValidationError, TypeError) as exc:
            raise ConfigError(f"[job] is not a valid JobSpec: {exc}") from exc

    def build_template(self) -> Any:
        from finetune_wb.data.template import Template

        return Template(
            system=self.template.system, user=self.template.user, assistant=self.template.assistant
        )

    def load_records(self) -> list[dict[str, Any]]:
        """The records named by ``[data]``, filtered by ``where`` and cut to ``limit``.

        They are read by the data stage's reader (:func:`~finetune_wb.data.read_records`), so a file reads
        the same here as through the session; a problem with it is a :class:`ConfigError` naming file:line.
        """
        d = self.data
        if d.demo:
            from finetune_wb.data.demo_dataset import load_demo_records

            records = load_demo_records()
        elif d.path:
            try:
                records = read_records(self.resolve(d.path))
            except DataError as exc:
                raise ConfigError(str(exc)) from exc
        else:
            try:
                records = load_hf_records(d.hf_dataset or "", d.hf_config, d.hf_splits)
            except DataError as exc:
                raise ConfigError(
                    f"{exc}; without access to the hub, use path = a local JSONL/CSV/TSV copy instead of "
                    "hf_dataset"
                ) from exc
        if d.where:
            records = [r for r in records if all(r.get(k) == v for k, v in d.where.items())]
        if d.limit is not None:
            records = records[: d.limit]
        if not records:
            raise ConfigError("[data] selected no records (check path, where and limit)")
        return records

    def build_evaluators(self) -> list[Any]:
        """Resolve ``[evaluation].evaluators`` to evaluator objects from :mod:`finetune_wb.evaluation`."""
        return [
            resolve_evaluator(e.name, e.kwargs, base_dir=self.base_dir) for e in self.evaluation.evaluators
        ]


def _dotted(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic error location as the key a user would write: ``job.n_epochs``, ``evaluators[1]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(err: Any) -> str:
    """A pydantic error message; an unknown key also lists the keys its table accepts."""
    if err["type"] != "extra_forbidden":
        return str(err["msg"]).removeprefix("Value error, ")
    model: Any = RunConfig
    for part in err["loc"][:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        model = field.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return "unknown key"
    allowed = sorted(set(model.model_fields) - {"base_dir", "source_path"})
    return f"unknown key; this table accepts: {', '.join(allowed)}"


def _problems_text(source: str, problems: list[tuple[str, str]]) -> str:
    lines = [f"  {key}: {msg}" for key, msg in problems]
    return f"{source}: invalid run config:\n" + "\n".join(lines)


@contextlib.contextmanager
def config_key(source: str, key: str) -> Iterator[None]:
    """Re-raise a data or config problem found while running as a :class:`ConfigError` naming file and key."""
    try:
        yield
    except (ConfigError, DataError) as exc:
        raise ConfigError(f"{source}: {key}: {exc}") from exc
