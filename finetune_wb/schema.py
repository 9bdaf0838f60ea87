"""Pydantic models for chat training data and for a fine-tuning job specification.

These models are strict about what OpenAI's fine-tuning endpoints accept, so that a bad example fails
when it is built rather than minutes into an upload. The validator (``validate.py``) does *not* use them
on raw lines: it checks plain dicts itself so it can report every problem with a stable code instead of
stopping at the first pydantic error.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant", "tool", "function")
Method = Literal["supervised", "dpo", "reinforcement"]

#: Every status a fine-tuning job can have (OpenAI's list; Azure adds ``paused``), in lifecycle order.
JOB_STATUSES: tuple[str, ...] = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
#: A job in one of these statuses will not change again: stop polling, sync it, read its result files.
TERMINAL_JOB_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


def content_text(content: Any, *, show_other_parts: bool = False) -> str:
    """The text of a message ``content`` as the API carries it: a string, a list of parts, or None.

    Text parts are joined with newlines. Other parts (images, audio, refusals) are left out, or, with
    ``show_other_parts`` (for tables people read), shown as ``[image_url]`` / ``[refusal] <text>``.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces: list[str] = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                pieces.append(part["text"])
            elif show_other_parts and isinstance(part, dict):
                pieces.append(
                    f"[refusal] {part['refusal']}" if "refusal" in part else f"[{part.get('type', 'text')}]"
                )
            elif show_other_parts:
                pieces.append(str(part))
        return "\n".join(pieces)
    return json.dumps(content, ensure_ascii=False, default=str)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionCall(_Strict):
    """A function invocation by the assistant; ``arguments`` is a JSON-encoded string."""

    name: str
    arguments: str

    @field_validator("arguments")
    @classmethod
    def _arguments_are_json(cls, value: str) -> str:
        try:
            json.loads(value)
        except ValueError as exc:
            raise ValueError(f"function arguments must be a JSON string, got {value[:80]!r}: {exc}") from None
        return value


class ToolCall(_Strict):
    """One tool call in an assistant message."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImageURL(_Strict):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[Union[TextPart, ImagePart], Field(discriminator="type")]  # noqa: UP007


class Message(_Strict):
    """One chat message in OpenAI's fine-tuning format."""

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCall | None = None
    weight: Literal[0, 1] | None = Field(
        default=None, description="0 = do not train on this assistant message, 1 = train on it"
    )

    @field_validator("weight", mode="before")
    @classmethod
    def _weight_is_0_or_1(cls, value: Any) -> Any:
        if value is None or (type(value) is int and value in (0, 1)):
            return value
        raise ValueError(f"weight must be 0 or 1, got {value!r}")

    @model_validator(mode="after")
    def _check_role_rules(self) -> Message:
        if self.weight is not None and self.role != "assistant":
            raise ValueError(f"weight is only allowed on assistant messages, not on role {self.role!r}")
        if (
            self.role == "assistant"
            and isinstance(self.content, list)
            and any(isinstance(p, ImagePart) for p in self.content)
        ):
            raise ValueError("assistant messages cannot contain image parts; move the image to a user turn")
        if (self.tool_calls is not None or self.function_call is not None) and self.role != "assistant":
            raise ValueError(
                f"only assistant messages may have tool_calls or function_call, not {self.role!r}"
            )
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("tool messages need tool_call_id (the id of the assistant's tool call)")
        if self.content in (None, "", []) and not (
            self.role == "assistant" and (self.tool_calls or self.function_call)
        ):
            raise ValueError(
                f"{self.role} message has no content; only assistant messages with tool_calls or"
                " function_call may leave it empty"
            )
        return self

    @property
    def text(self) -> str:
        """The message's text: the string content, or its text parts joined; '' when there is none."""
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if isinstance(p, TextPart))
        return ""

    def to_openai(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _check_tool_call_ids(messages: list[Message], where: str) -> None:
    seen: set[str] = set()
    for i, msg in enumerate(messages):
        for call in msg.tool_calls or []:
            seen.add(call.id)
        if msg.role == "tool" and msg.tool_call_id not in seen:
            raise ValueError(
                f"{where}[{i}]: tool message answers tool_call_id {msg.tool_call_id!r}, which no earlier"
                " assistant tool call has"
            )


class ChatExample(_Strict):
    """One supervised training example: a conversation that ends with (at least one) assistant turn."""

    messages: list[Message] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _needs_assistant(self) -> ChatExample:
        if not any(m.role == "assistant" for m in self.messages):
            raise ValueError("an example needs at least one assistant message (the answer to train on)")
        _check_tool_call_ids(self.messages, "messages")
        return self

    def _last_assistant_index(self) -> int:
        return max(i for i, m in enumerate(self.messages) if m.role == "assistant")

    def prompt_messages(self) -> list[dict[str, Any]]:
        """Every message before the last assistant message, as OpenAI dicts without ``weight``."""
        out = []
        for m in self.messages[: self._last_assistant_index()]:
            d = m.to_openai()
            d.pop("weight", None)
            out.append(d)
        return out

    @property
    def target(self) -> str:
        """The text of the last assistant message (the answer the model should learn)."""
        return self.messages[self._last_assistant_index()].text

    def to_openai(self) -> dict[str, Any]:
        """The JSON-ready dict for one line of a training file."""
        return self.model_dump(mode="json", exclude_none=True)


class PreferenceInput(_Strict):
    messages: list[Message] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    parallel_tool_calls: bool | None = None

    @model_validator(mode="after")
    def _tool_ids(self) -> PreferenceInput:
        _check_tool_call_ids(self.messages, "input.messages")
        return self


def _one_assistant_turn(value: list[Message], field: str) -> list[Message]:
    if len(value) != 1 or value[0].role != "assistant":
        raise ValueError(f"{field} must be a list with exactly one assistant message")
    return value


class PreferenceExample(_Strict):
    """One DPO example: a prompt plus a preferred and a non-preferred assistant answer."""

    input: PreferenceInput
    preferred_output: list[Message]
    non_preferred_output: list[Message]

    @field_validator("preferred_output")
    @classmethod
    def _preferred(cls, value: list[Message]) -> list[Message]:
        return _one_assistant_turn(value, "preferred_output")

    @field_validator("non_preferred_output")
    @classmethod
    def _non_preferred(cls, value: list[Message]) -> list[Message]:
        return _one_assistant_turn(value, "non_preferred_output")

    def prompt_messages(self) -> list[dict[str, Any]]:
        return [m.to_openai() for m in self.input.messages]

    @property
    def target(self) -> str:
        return self.preferred_output[0].text

    def to_openai(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# ---------------------------------------------------------------------------------------------- job spec

Auto = Literal["auto"]
# field -> (type, low, high, low bound exclusive)
_HYPER_RANGES: dict[str, tuple[type, float, float, bool]] = {
    "n_epochs": (int, 1, 50, False),
    "batch_size": (int, 1, 256, False),
    "learning_rate_multiplier": (float, 0, math.inf, True),  # the API sets no upper bound
    "beta": (float, 0, 2, True),
}


class JobSpec(BaseModel):
    """What to fine-tune and how; ``to_create_params`` gives ``client.fine_tuning.jobs.create`` kwargs.

    Ranges follow OpenAI's API reference: n_epochs 1..50, batch_size 1..256, learning_rate_multiplier > 0,
    beta in (0, 2] (DPO only). Each hyperparameter may also be ``"auto"`` (the server chooses).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = "gpt-4o-mini-2024-07-18"
    method: Method = "supervised"
    n_epochs: Auto | Annotated[int, Field(ge=1, le=50)] = "auto"
    batch_size: Auto | Annotated[int, Field(ge=1, le=256)] = "auto"
    learning_rate_multiplier: Auto | Annotated[float, Field(gt=0)] = "auto"
    beta: Auto | Annotated[float, Field(gt=0, le=2)] = "auto"
    suffix: str | None = Field(default=None, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2147483647)
    metadata: dict[str, str] = Field(default_factory=dict)
    integrations: list[dict[str, Any]] = Field(default_factory=list)
    grader: dict[str, Any] | None = Field(default=None, description="reinforcement only: the grader config")
    reinforcement_hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="reinforcement only: extra hyperparameters (compute_multiplier, eval_interval, ...)",
    )
    training_type: Literal["standard", "globalstandard", "developerTier"] | None = Field(
        default=None,
        description="Azure OpenAI only: where the job trains (sent as trainingType); None: Azure's default",
    )
    provider_hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameters only some providers take (Nebius: learning_rate, lora, lora_r, ...), "
        "sent with the method's hyperparameters; checked against the provider's profile before the upload",
    )

    @model_serializer(mode="wrap")
    def _without_unset_provider_fields(self, handler: Any) -> Any:
        # specs dumped before these fields existed (session state files) must compare equal
        data = handler(self)
        if isinstance(data, dict):
            if data.get("training_type") is None:
                data.pop("training_type", None)
            if not data.get("provider_hyperparameters"):
                data.pop("provider_hyperparameters", None)
        return data

    @field_validator("n_epochs", "batch_size", "learning_rate_multiplier", "beta", mode="before")
    @classmethod
    def _auto_or_in_range(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or ""
        kind, lo, hi, lo_open = _HYPER_RANGES[name]
        if value == "auto" and isinstance(value, str):
            return value
        number_ok = not isinstance(value, bool) and isinstance(value, (int, float))
        if kind is int:
            number_ok = number_ok and float(value).is_integer()
        number_ok = number_ok and math.isfinite(value)
        if number_ok and (value > lo if lo_open else value >= lo) and value <= hi:
            return int(value) if kind is int else float(value)
        low = f"> {lo}" if lo_open else f">= {lo}"
        what = "an integer" if kind is int else "a number"
        high = "" if hi == math.inf else f" and <= {hi}"
        raise ValueError(f"{name} must be 'auto' or {what} {low}{high}, got {value!r}")

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model must be a model name such as 'gpt-4o-mini-2024-07-18'")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 16:
            raise ValueError(f"metadata allows at most 16 key-value pairs, got {len(value)}")
        for k, v in value.items():
            if len(k) > 64:
                raise ValueError(f"metadata key {k[:20]!r}... is longer than 64 characters")
            if len(v) > 512:
                raise ValueError(f"metadata value for {k!r} is longer than 512 characters")
        return value

    @field_validator("integrations")
    @classmethod
    def _integrations_shape(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, item in enumerate(value):
            if item.get("type") != "wandb" or not isinstance(item.get("wandb"), dict):
                raise ValueError(
                    f"integrations[{i}] must be {{'type': 'wandb', 'wandb': {{'project': ...}}}}"
                )
            if not item["wandb"].get("project"):
                raise ValueError(f"integrations[{i}].wandb needs a 'project'")
        return value

    @model_validator(mode="after")
    def _method_rules(self) -> JobSpec:
        if self.method != "dpo" and self.beta != "auto":
            raise ValueError(f"beta applies only to method='dpo', not method={self.method!r}")
        if self.method == "reinforcement" and self.grader is None:
            raise ValueError("method='reinforcement' needs a grader (dict)")
        if self.method != "reinforcement" and (self.grader is not None or self.reinforcement_hyperparameters):
            raise ValueError("grader and reinforcement_hyperparameters apply only to method='reinforcement'")
        return self

    def hyperparameters(self) -> dict[str, Any]:
        """The explicitly chosen (non-"auto") hyperparameters of this job's method."""
        hp: dict[str, Any] = {}
        for key in ("n_epochs", "batch_size", "learning_rate_multiplier"):
            value = getattr(self, key)
            if value != "auto":
                hp[key] = value
        if self.method == "dpo" and self.beta != "auto":
            hp["beta"] = self.beta
        if self.method == "reinforcement":
            hp.update(self.reinforcement_hyperparameters)
        return hp

    def with_wandb(
        self,
        project: str,
        *,
        entity: str | None = None,
        name: str | None = None,
        tags: list[str] | None = None,
    ) -> JobSpec:
        """A copy with OpenAI's server-side W&B integration added."""
        wandb: dict[str, Any] = {"project": project}
        if entity:
            wandb["entity"] = entity
        if name:
            wandb["name"] = name
        if tags:
            wandb["tags"] = list(tags)
        return self.model_copy(
            update={"integrations": [*self.integrations, {"type": "wandb", "wandb": wandb}]}
        )

    def to_create_params(self, *, training_file: str, validation_file: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``client.fine_tuning.jobs.create`` (openai >= 1.58 ``method`` form)."""
        method: dict[str, Any] = {"type": self.method}
        body: dict[str, Any] = {}
        hp = self.hyperparameters()
        if hp:
            body["hyperparameters"] = hp
        if self.method == "reinforcement":
            body["grader"] = self.grader
        if self.provider_hyperparameters:
            body["hyperparameters"] = {**body.get("hyperparameters", {}), **self.provider_hyperparameters}
        if body:
            method[self.method] = body
        params: dict[str, Any] = {"model": self.model, "training_file": training_file, "method": method}
        if self.training_type is not None:
            params["extra_body"] = {"trainingType": self.training_type}
        if validation_file is not None:
            params["validation_file"] = validation_file
        if self.suffix is not None:
            params["suffix"] = self.suffix
        if self.seed is not None:
            params["seed"] = self.seed
        if self.metadata:
            params["metadata"] = dict(self.metadata)
        if self.integrations:
            params["integrations"] = [dict(i) for i in self.integrations]
        return params
