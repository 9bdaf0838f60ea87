from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError

from finetune_wb.schema import ChatExample, JobSpec, Message, PreferenceExample


def chat(*messages: dict[str, object], **extra: object) -> dict[str, object]:
    return {"messages": list(messages), **extra}


SYS = {"role": "system", "content": "Answer Yes or No."}
USER = {"role": "user", "content": "Is it?"}
ASSIST = {"role": "assistant", "content": "Yes"}


def test_chat_example_prompt_target_and_round_trip() -> None:
    ex = ChatExample.model_validate(chat(SYS, USER, {**ASSIST, "weight": 1}))
    assert ex.target == "Yes"
    assert ex.prompt_messages() == [SYS, USER]
    assert ex.to_openai() == chat(SYS, USER, {**ASSIST, "weight": 1})
    assert ChatExample.model_validate(ex.to_openai()) == ex


def test_target_is_last_assistant_and_prompt_drops_weight() -> None:
    ex = ChatExample.model_validate(
        chat(
            USER,
            {"role": "assistant", "content": "first", "weight": 0},
            USER,
            {"role": "assistant", "content": "2"},
        )
    )
    assert ex.target == "2"
    assert ex.prompt_messages()[1] == {"role": "assistant", "content": "first"}


def test_message_text_from_parts() -> None:
    m = Message.model_validate(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "a"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "text", "text": "b"},
            ],
        }
    )
    assert m.text == "ab"


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ({"role": "robot", "content": "x"}, "role"),
        ({"role": "user", "content": "x", "weight": 1}, "weight is only allowed on assistant"),
        ({"role": "assistant", "content": "x", "weight": 2}, "weight must be 0 or 1"),
        ({"role": "assistant", "content": "x", "weight": True}, "weight must be 0 or 1"),
        ({"role": "user", "content": None}, "no content"),
        ({"role": "assistant", "content": ""}, "no content"),
        ({"role": "user", "content": []}, "no content"),
        ({"role": "tool", "content": "42"}, "tool_call_id"),
        (
            {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
            "cannot contain image",
        ),
        ({"role": "user", "content": "x", "colour": "red"}, "colour"),
        (
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{"}}],
            },
            "JSON",
        ),
    ],
)
def test_invalid_messages_fail_with_a_clear_message(message: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        Message.model_validate(message)
    assert fragment in str(info.value)


def test_tool_calls_and_matching_tool_message() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
    ex = ChatExample.model_validate(
        chat(
            USER,
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "2"},
            ASSIST,
        )
    )
    assert ex.messages[1].content is None
    with pytest.raises(ValidationError, match="no earlier"):
        ChatExample.model_validate(chat(USER, {"role": "tool", "tool_call_id": "zz", "content": "2"}, ASSIST))


def test_chat_example_needs_assistant() -> None:
    with pytest.raises(ValidationError, match="at least one assistant"):
        ChatExample.model_validate(chat(SYS, USER))


def test_preference_example() -> None:
    ex = PreferenceExample.model_validate(
        {
            "input": {"messages": [USER]},
            "preferred_output": [{"role": "assistant", "content": "good"}],
            "non_preferred_output": [{"role": "assistant", "content": "bad"}],
        }
    )
    assert ex.target == "good"
    assert ex.prompt_messages() == [USER]
    with pytest.raises(ValidationError, match="exactly one assistant"):
        PreferenceExample.model_validate(
            {"input": {"messages": [USER]}, "preferred_output": [USER], "non_preferred_output": [ASSIST]}
        )


def test_job_spec_to_create_params_matches_openai_signature() -> None:
    from openai.resources.fine_tuning.jobs import Jobs

    spec = JobSpec(
        model="gpt-4o-mini-2024-07-18",
        n_epochs=3,
        batch_size=8,
        learning_rate_multiplier=0.5,
        suffix="legal",
        seed=7,
        metadata={"team": "nlp"},
    ).with_wandb("proj", entity="me", tags=["a"])
    params = spec.to_create_params(training_file="file-a", validation_file="file-b")
    allowed = set(inspect.signature(Jobs.create).parameters) - {"self"}
    assert set(params) <= allowed
    assert params == {
        "model": "gpt-4o-mini-2024-07-18",
        "training_file": "file-a",
        "validation_file": "file-b",
        "method": {
            "type": "supervised",
            "supervised": {
                "hyperparameters": {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.5}
            },
        },
        "suffix": "legal",
        "seed": 7,
        "metadata": {"team": "nlp"},
        "integrations": [{"type": "wandb", "wandb": {"project": "proj", "entity": "me", "tags": ["a"]}}],
    }


def test_job_spec_defaults_are_minimal() -> None:
    params = JobSpec().to_create_params(training_file="file-a")
    assert params == {
        "model": "gpt-4o-mini-2024-07-18",
        "training_file": "file-a",
        "method": {"type": "supervised"},
    }


def test_dpo_spec_carries_beta() -> None:
    params = JobSpec(method="dpo", beta=0.2).to_create_params(training_file="f")
    assert params["method"] == {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}


def test_reinforcement_spec_needs_grader() -> None:
    grader = {
        "type": "string_check",
        "name": "g",
        "input": "{{sample.output_text}}",
        "reference": "x",
        "operation": "eq",
    }
    params = JobSpec(model="o4-mini", method="reinforcement", grader=grader).to_create_params(
        training_file="f"
    )
    assert params["method"] == {"type": "reinforcement", "reinforcement": {"grader": grader}}
    with pytest.raises(ValidationError, match="grader"):
        JobSpec(method="reinforcement")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_epochs": 0}, "n_epochs"),
        ({"n_epochs": 51}, "n_epochs"),
        ({"n_epochs": "many"}, "n_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate_multiplier": 0}, "learning_rate_multiplier"),
        ({"learning_rate_multiplier": float("inf")}, "learning_rate_multiplier"),
        ({"learning_rate_multiplier": float("nan")}, "learning_rate_multiplier"),
        ({"batch_size": 257}, "batch_size"),
        ({"n_epochs": 2.5}, "n_epochs"),
        ({"method": "dpo", "beta": 3}, "beta"),
        ({"beta": 0.1}, "beta"),
        ({"method": "sft"}, "method"),
        ({"suffix": "x" * 65}, "suffix"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"k" * 65: "v"}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
        ({"integrations": [{"type": "slack"}]}, "integrations"),
        ({"model": " "}, "model"),
        ({"epochs": 3}, "epochs"),
    ],
)
def test_invalid_spec_fails_at_construction_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        JobSpec(**kwargs)  # type: ignore[arg-type]
    assert field in str(info.value)


def test_learning_rate_multiplier_has_no_upper_bound_like_the_api() -> None:
    # OpenAI's reference gives only "> 0"; a ceiling of our own would refuse jobs the API accepts.
    spec = JobSpec(learning_rate_multiplier=25)
    assert spec.to_create_params(training_file="file-1")["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"learning_rate_multiplier": 25.0}},
    }
    with pytest.raises(ValidationError, match=r"a number > 0, got -1"):
        JobSpec(learning_rate_multiplier=-1)


def test_content_text_of_every_content_shape() -> None:
    from finetune_wb.schema import content_text

    parts = [
        {"type": "text", "text": "a"},
        {"type": "image_url", "image_url": {"url": "data:..."}},
        {"type": "refusal", "refusal": "no"},
        "b",
    ]
    assert content_text(None) == ""
    assert content_text("plain") == "plain"
    assert content_text(parts) == "a\nb"
    assert content_text(parts, show_other_parts=True) == "a\n[image_url]\n[refusal] no\nb"
    assert content_text({"odd": 1}) == '{"odd": 1}'


def test_terminal_statuses_are_statuses() -> None:
    from finetune_wb.schema import JOB_STATUSES, TERMINAL_JOB_STATUSES

    assert {"succeeded", "failed", "cancelled"} == TERMINAL_JOB_STATUSES
    assert set(JOB_STATUSES) >= TERMINAL_JOB_STATUSES
