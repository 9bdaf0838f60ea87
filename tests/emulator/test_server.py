"""The emulator driven by the official openai client: the full fine-tuning flow, sync and async."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import openai
import pytest

from finetune_wb.emulator import Emulator
from tests.fakes.emulator_helpers import jsonl, wait_job, yes_no_examples

BASE = "gpt-4o-mini-2024-07-18"


def upload(client: openai.OpenAI, examples: list[dict[str, Any]], name: str = "train.jsonl") -> Any:
    return client.files.create(file=(name, jsonl(examples)), purpose="fine-tune")


def test_full_flow_sync(
    finetune_emulator: Emulator, finetune_emulator_client: openai.OpenAI, tmp_path: Path
) -> None:
    from finetune_wb.validation.validate import validate_file

    client = finetune_emulator_client
    examples = yes_no_examples(40)
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl(examples))
    file = client.files.create(file=path, purpose="fine-tune")
    assert file.object == "file" and file.status == "processed" and file.bytes == path.stat().st_size
    assert client.files.retrieve(file.id).filename == "train.jsonl"
    assert client.files.content(file.id).content == path.read_bytes()

    job = client.fine_tuning.jobs.create(
        model=BASE,
        training_file=file.id,
        suffix="yesno",
        metadata={"team": "legal"},
        hyperparameters={"n_epochs": 3},
    )
    assert job.status == "validating_files" and job.metadata == {"team": "legal"}
    job = wait_job(client, job.id)
    assert job.status == "succeeded", job.error
    assert re.fullmatch(rf"ft:{BASE}:emulator-org:yesno:\w{{8}}", job.fine_tuned_model or "")
    assert job.finished_at is not None and job.finished_at >= job.created_at
    report = validate_file(path, model=BASE, n_epochs=3)
    assert job.trained_tokens == report.tokens.total * 3
    assert job.hyperparameters.n_epochs == 3 and job.hyperparameters.batch_size == 1
    total_steps = 40 * 3

    # events: auto-paging with a small page size yields each event exactly once, newest first
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=7))
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids))
    first_page = client.fine_tuning.jobs.list_events(job.id, limit=100)
    assert [e.id for e in first_page.data] == ids[:100]
    assert events[0].message == "The job has successfully completed"
    assert events[-1].message.startswith("Validating training file")
    assert [e.created_at for e in events] == sorted((e.created_at for e in events), reverse=True)
    metrics = [e for e in events if e.type == "metrics"]
    assert len(metrics) == total_steps
    data = metrics[0].data
    assert isinstance(data, dict)
    assert data["step"] == total_steps and data["total_steps"] == total_steps
    assert {"train_loss", "train_mean_token_accuracy"} <= set(data) and "valid_loss" not in data

    # checkpoints at the end of each of the 3 epochs, newest first
    ckpts = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in ckpts] == [120, 80, 40]
    assert ckpts[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-120"
    assert ckpts[0].metrics.train_loss is not None

    # result file: base64 of a CSV with one row per step
    (result_id,) = job.result_files
    result = client.files.retrieve(result_id)
    assert result.purpose == "fine-tune-results"
    csv = base64.b64decode(client.files.content(result_id).content).decode()
    lines = csv.strip().splitlines()
    assert lines[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
    assert len(lines) == total_steps + 1 and lines[1].startswith("1,")

    # the fine-tuned model reproduces its training answers; the base model wraps a label in a sentence
    for ex in examples:
        reply = client.chat.completions.create(model=job.fine_tuned_model or "", messages=ex["messages"][:2])
        assert reply.choices[0].message.content == ex["messages"][2]["content"]
        assert (
            reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens == 1
        )
    base = client.chat.completions.create(model=BASE, messages=examples[0]["messages"][:2])
    text = base.choices[0].message.content or ""
    assert text not in ("Yes", "No") and re.search(r"\b(Yes|No)\b", text)
    again = client.chat.completions.create(model=BASE, messages=examples[0]["messages"][:2])
    assert again.choices[0].message.content == text
    ckpt_reply = client.chat.completions.create(
        model=ckpts[-1].fine_tuned_model_checkpoint, messages=examples[1]["messages"][:2]
    )
    assert ckpt_reply.choices[0].message.content == examples[1]["messages"][2]["content"]

    # models: listed, retrievable, deletable (then gone)
    assert job.fine_tuned_model in [m.id for m in client.models.list()]
    assert client.models.retrieve(job.fine_tuned_model or "").owned_by == job.organization_id
    assert client.models.delete(job.fine_tuned_model or "").deleted is True
    with pytest.raises(openai.NotFoundError) as gone:
        client.chat.completions.create(model=job.fine_tuned_model or "", messages=examples[0]["messages"][:2])
    assert gone.value.code == "model_not_found"  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(job.fine_tuned_model or "")
    assert job.fine_tuned_model not in [m.id for m in client.models.list()]
    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete(BASE)

    assert client.files.delete(file.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file.id)


def test_full_flow_async(finetune_emulator_async_client: openai.AsyncOpenAI) -> None:
    examples = yes_no_examples(12)
    validation = yes_no_examples(6, offset=100)

    async def flow() -> None:
        client = finetune_emulator_async_client
        train = await client.files.create(file=("t.jsonl", jsonl(examples)), purpose="fine-tune")
        valid = await client.files.create(file=("v.jsonl", jsonl(validation)), purpose="fine-tune")
        job = await client.fine_tuning.jobs.create(
            model=BASE,
            training_file=train.id,
            validation_file=valid.id,
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 4}}},
        )
        for _ in range(1000):
            job = await client.fine_tuning.jobs.retrieve(job.id)
            if job.status in ("succeeded", "failed", "cancelled"):
                break
            await asyncio.sleep(0.02)
        assert job.status == "succeeded"
        seen = [e async for e in client.fine_tuning.jobs.list_events(job.id, limit=5)]
        assert len({e.id for e in seen}) == len(seen)
        metric = next(e for e in seen if e.type == "metrics")
        assert isinstance(metric.data, dict)
        assert {"valid_loss", "valid_mean_token_accuracy"} <= set(metric.data)
        ckpts = (await client.fine_tuning.jobs.checkpoints.list(job.id)).data
        assert [c.step_number for c in ckpts] == [48, 36, 24]
        assert ckpts[0].metrics.full_valid_loss is not None
        answers = await asyncio.gather(
            *[
                client.chat.completions.create(model=job.fine_tuned_model or "", messages=ex["messages"][:2])
                for ex in examples
            ]
        )
        assert [a.choices[0].message.content for a in answers] == [
            e["messages"][2]["content"] for e in examples
        ]
        await client.close()

    asyncio.run(flow())


def test_different_training_data_gives_a_different_model(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    examples = yes_no_examples(10)
    flipped = [
        {
            "messages": [
                *e["messages"][:2],
                {"role": "assistant", "content": "No" if e["messages"][2]["content"] == "Yes" else "Yes"},
            ]
        }
        for e in examples
    ]
    models = []
    for data in (examples, flipped):
        job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client, data).id)
        models.append(wait_job(client, job.id).fine_tuned_model)
    prompt = examples[4]["messages"][:2]
    a, b = (
        client.chat.completions.create(model=m, messages=prompt).choices[0].message.content for m in models
    )
    assert {a, b} == {"Yes", "No"}


def test_nearest_neighbour_answers_unseen_prompts_by_similarity(
    finetune_emulator_client: openai.OpenAI,
) -> None:
    client = finetune_emulator_client
    data = [
        {
            "messages": [
                {"role": "user", "content": "What colour is the sky on a clear day?"},
                {"role": "assistant", "content": "blue"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "What colour is fresh grass in spring?"},
                {"role": "assistant", "content": "green"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "Paris"},
            ]
        },
    ] * 4
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client, data).id)
    model = wait_job(client, job.id).fine_tuned_model or ""

    def ask(text: str) -> str | None:
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
        return r.choices[0].message.content

    assert ask("the grass in spring, which colour?") == "green"
    assert ask("capital city of france") == "Paris"
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "sky colour"}], max_tokens=1, n=2
    )
    assert [c.message.content for c in reply.choices] == ["blue", "blue"]


def test_invalid_training_file_fails_the_job_naming_the_line(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    good = jsonl(yes_no_examples(12)).decode().splitlines()
    bad = [*good[:4], '{"messages": [{"role": "user", "content": "no answer here"}]}', *good[4:]]
    file = client.files.create(file=("bad.jsonl", "\n".join(bad).encode()), purpose="fine-tune")
    job = wait_job(client, client.fine_tuning.jobs.create(model=BASE, training_file=file.id).id)
    assert job.status == "failed"
    assert job.error is not None and job.error.param == "training_file"
    assert job.error.code == "invalid_training_file"
    assert "line 5" in job.error.message
    assert job.fine_tuned_model is None and job.finished_at is not None
    events = client.fine_tuning.jobs.list_events(job.id).data
    assert events[0].level == "error"


def test_bad_requests_answer_400_with_the_error_shape(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model=BASE, training_file="file-doesnotexist")
    assert info.value.param == "training_file"  # type: ignore[attr-defined]
    body = info.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    other = client.files.create(file=("notes.txt", b"hello"), purpose="assistants")
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model=BASE, training_file=other.id)
    assert info.value.param == "training_file"  # type: ignore[attr-defined]
    train = upload(client, yes_no_examples(10))
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model="not-a-model", training_file=train.id)
    assert info.value.param == "model"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model=BASE, training_file=train.id, validation_file=other.id)
    assert info.value.param == "validation_file"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.list(limit=0)


def test_missing_api_key_is_401(finetune_emulator: Emulator) -> None:
    import httpx

    r = httpx.get(finetune_emulator.base_url + "/files")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.get(finetune_emulator.base_url + "/models", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(openai.AuthenticationError):
        finetune_emulator.client(default_headers={"Authorization": "Token x"}).files.list()


def test_unknown_objects_are_404(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-nope")
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.list_events("ftjob-nope")
    with pytest.raises(openai.NotFoundError):
        client.files.content("file-nope")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("ft:gpt-4o-mini-2024-07-18:x::nope")
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found"  # type: ignore[attr-defined]
    never = "ft:gpt-4o-mini-2024-07-18:emulator-org:ghost:abcd1234"
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model=never, messages=[{"role": "user", "content": "hi"}])
    assert (info.value.code, info.value.param) == ("model_not_found", "model")  # type: ignore[attr-defined]
    assert never in info.value.message


def test_cancel_and_cancelling_a_finished_job(
    finetune_emulator: Emulator, finetune_emulator_client: openai.OpenAI
) -> None:
    client = finetune_emulator_client
    finetune_emulator.pace = 100.0  # slow: the job stays in its first phase for minutes
    train = upload(client, yes_no_examples(10))
    job = client.fine_tuning.jobs.create(model=BASE, training_file=train.id)
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job.id)
    assert client.fine_tuning.jobs.list_events(job.id).data[0].message == "Fine-tuning job cancelled"


def test_list_jobs_newest_first_with_cursor_and_metadata_filter(
    finetune_emulator: Emulator, finetune_emulator_client: openai.OpenAI
) -> None:
    client = finetune_emulator_client
    finetune_emulator.pace = 100.0
    train = upload(client, yes_no_examples(10))
    created = [
        client.fine_tuning.jobs.create(model=BASE, training_file=train.id, metadata={"batch": str(i % 2)}).id
        for i in range(5)
    ]
    page = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == created[::-1][:2] and page.has_more is True
    assert [j.id for j in client.fine_tuning.jobs.list(limit=2)] == created[::-1]
    last = client.fine_tuning.jobs.list(limit=2, after=created[1])
    assert [j.id for j in last.data] == [created[0]] and last.has_more is False
    odd = client.fine_tuning.jobs.list(metadata={"batch": "1"}).data
    assert [j.id for j in odd] == [created[3], created[1]]


def test_library_pipeline_from_the_testing_docs(
    finetune_emulator_client: openai.OpenAI, tmp_path: Path
) -> None:
    """The example in docs/testing.md, with finetune_wb's own upload/create/wait functions."""
    from finetune_wb import JobSpec, create_job, upload_file, wait_for_job

    client = finetune_emulator_client
    examples = yes_no_examples(12)
    train = tmp_path / "train.jsonl"
    train.write_bytes(jsonl(examples))
    file = upload_file(train, client=client)
    job = create_job(JobSpec(suffix="ci"), training_file=file.id, client=client)
    job = wait_for_job(job.id, client=client, poll_interval=0.05, progress=False)
    assert job.fine_tuned_model is not None and ":ci:" in job.fine_tuned_model
    reply = client.chat.completions.create(model=job.fine_tuned_model, messages=examples[2]["messages"][:2])
    assert reply.choices[0].message.content == examples[2]["messages"][2]["content"]


def test_dpo_job_learns_the_preferred_answers(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    lines = [
        {
            "input": {
                "messages": [{"role": "user", "content": f"Describe item {i} in the {topic} catalogue"}]
            },
            "preferred_output": [{"role": "assistant", "content": f"A fine {topic} item, number {i}."}],
            "non_preferred_output": [{"role": "assistant", "content": "No idea."}],
        }
        for i, topic in enumerate(["garden", "kitchen", "office", "garage"] * 3)
    ]
    train = upload(client, lines)
    job = client.fine_tuning.jobs.create(
        model=BASE, training_file=train.id, method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}
    )
    job = wait_job(client, job.id)
    assert job.status == "succeeded", job.error
    assert job.method is not None and job.method.dpo is not None
    assert job.method.dpo.hyperparameters is not None and job.method.dpo.hyperparameters.beta == 0.2
    reply = client.chat.completions.create(
        model=job.fine_tuned_model or "",
        messages=[{"role": "user", "content": "describe item 5 in the kitchen catalogue"}],
    )
    assert reply.choices[0].message.content == "A fine kitchen item, number 5."

    chat_file = upload(client, yes_no_examples(10))
    job = client.fine_tuning.jobs.create(model=BASE, training_file=chat_file.id, method={"type": "dpo"})
    failed = wait_job(client, job.id)
    assert failed.status == "failed" and failed.error is not None and failed.error.param == "training_file"


def test_fine_tune_beats_base_on_held_out_legalbench(
    finetune_emulator_client: openai.OpenAI, legalbench_dir: Path
) -> None:
    """The demo's claim: on a real Yes/No task the fine-tuned stand-in beats its base model on unseen data."""
    import json

    client = finetune_emulator_client
    rows = [json.loads(line) for line in (legalbench_dir / "examples.jsonl").read_text().splitlines() if line]
    system = "Does the clause explicitly identify what counts as confidential information? Answer Yes or No."

    def chat(row: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "system", "content": system}, {"role": "user", "content": row["text"]}]

    train = [r for i, r in enumerate(rows) if i % 3]
    test = [r for i, r in enumerate(rows) if not i % 3]
    file = upload(
        client, [{"messages": [*chat(r), {"role": "assistant", "content": r["answer"]}]} for r in train]
    )
    job = wait_job(client, client.fine_tuning.jobs.create(model=BASE, training_file=file.id).id)
    assert job.status == "succeeded", job.error

    def label(text: str) -> str | None:
        found = re.search(r"\b(Yes|No)\b", text)
        return found.group(1) if found else None

    scores = {}
    for model in (job.fine_tuned_model or "", BASE):
        answers = [
            client.chat.completions.create(model=model, messages=chat(r)).choices[0].message.content or ""
            for r in test
        ]
        scores[model] = (
            sum(a == r["answer"] for a, r in zip(answers, test, strict=True)) / len(test),
            sum(label(a) == r["answer"] for a, r in zip(answers, test, strict=True)) / len(test),
        )
    ft_exact, ft_label = scores[job.fine_tuned_model or ""]
    base_exact, base_label = scores[BASE]
    assert base_exact == 0.0  # the base model answers in sentences
    assert ft_exact == ft_label >= 0.7
    assert ft_label > base_label + 0.15


def test_hyperparameter_validation_and_continued_fine_tuning(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    first, second = yes_no_examples(10), yes_no_examples(10, offset=50)
    train = upload(client, first)
    for bad in ({"n_epochs": 0}, {"batch_size": "big"}, {"learning_rate_multiplier": -1}):
        with pytest.raises(openai.BadRequestError) as info:
            client.fine_tuning.jobs.create(model=BASE, training_file=train.id, hyperparameters=bad)  # type: ignore[arg-type]
        assert info.value.param == f"hyperparameters.{next(iter(bad))}"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.create(model=BASE, training_file=train.id, suffix="a:b")
    parent = wait_job(client, client.fine_tuning.jobs.create(model=BASE, training_file=train.id).id)
    child = wait_job(
        client,
        client.fine_tuning.jobs.create(
            model=parent.fine_tuned_model or "", training_file=upload(client, second).id
        ).id,
    )
    assert child.status == "succeeded" and (child.fine_tuned_model or "").startswith(f"ft:{BASE}:")
    for ex in (first[3], second[3]):  # the child knows both its own data and its parent's
        reply = client.chat.completions.create(
            model=child.fine_tuned_model or "", messages=ex["messages"][:2]
        )
        assert reply.choices[0].message.content == ex["messages"][2]["content"]


def test_fine_tuned_model_answers_with_learned_tool_calls(finetune_emulator_client: openai.OpenAI) -> None:
    client = finetune_emulator_client
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    cities = [
        "Paris",
        "Oslo",
        "Lima",
        "Cairo",
        "Perth",
        "Quito",
        "Hanoi",
        "Dakar",
        "Turin",
        "Bergen",
        "Malmo",
    ]
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"What is the weather in {city} today?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": f"call_{i}",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
                        }
                    ],
                },
            ],
            "tools": tools,
        }
        for i, city in enumerate(cities)
    ]
    job = wait_job(
        client, client.fine_tuning.jobs.create(model=BASE, training_file=upload(client, lines).id).id
    )
    assert job.status == "succeeded", job.error
    reply = client.chat.completions.create(
        model=job.fine_tuned_model or "",
        messages=[{"role": "user", "content": "What is the weather in Oslo today?"}],
        tools=tools,  # type: ignore[arg-type]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]


def test_a_validator_that_cannot_run_fails_the_job_with_the_reason(
    finetune_emulator_client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import finetune_wb.validation.validate
    from finetune_wb.errors import ConfigError

    def no_tokenizer(*args: Any, **kwargs: Any) -> Any:
        raise ConfigError("cannot load the tokenizer o200k_base: set TIKTOKEN_CACHE_DIR")

    monkeypatch.setattr(finetune_wb.validation.validate, "validate_file", no_tokenizer)
    client = finetune_emulator_client
    file = upload(client, yes_no_examples(12), name="unvalidated.jsonl")
    job = wait_job(client, client.fine_tuning.jobs.create(model=BASE, training_file=file.id).id)
    assert job.status == "failed"
    assert job.error is not None and "TIKTOKEN_CACHE_DIR" in job.error.message
    assert job.error.code == "validation_unavailable" and job.error.param == "training_file"
    assert "could not validate training_file" in job.error.message
    assert "invalid training file" not in job.error.message  # the data is not to blame


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"hyperparameters": "fast"}, "hyperparameters"),
        ({"hyperparameters": {"n_epochs": 2, "epochs": 3}}, "hyperparameters.epochs"),
        ({"hyperparameters": {"beta": 0.1}}, "hyperparameters.beta"),
        ({"method": "supervised"}, "method"),
        ({"method": {"type": "dpo", "dpo": "x"}}, "method.dpo"),
        (
            {"method": {"type": "supervised", "supervised": {"hyperparameters": [1]}}},
            "method.supervised.hyperparameters",
        ),
        ({"integrations": "wandb"}, "integrations"),
        ({"integrations": [{"type": "wandb"}]}, "integrations[0]"),
        ({"integrations": [{"type": "mlflow", "mlflow": {}}]}, "integrations[0]"),
        ({"seed": "7"}, "seed"),
    ],
)
def test_malformed_job_parameters_answer_400_naming_the_parameter(
    finetune_emulator_client: openai.OpenAI, extra: dict[str, Any], param: str
) -> None:
    client = finetune_emulator_client
    train = upload(client, yes_no_examples(10))
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model=BASE, training_file=train.id, **extra)
    assert info.value.param == param  # type: ignore[attr-defined]
    assert client.fine_tuning.jobs.list().data == []


def test_malformed_chat_options_answer_400_naming_the_option(finetune_emulator: Emulator) -> None:
    import httpx

    url, headers = finetune_emulator.base_url + "/chat/completions", {"Authorization": "Bearer sk-test"}
    msgs = [{"role": "user", "content": "Yes or no?"}]
    for option, value in [
        ("n", "2"),
        ("n", 0),
        ("n", 500),
        ("max_tokens", "x"),
        ("max_tokens", -3),
        ("max_completion_tokens", 0),
    ]:
        r = httpx.post(url, headers=headers, json={"model": BASE, "messages": msgs, option: value})
        assert r.status_code == 400, (option, value, r.text)
        assert r.json()["error"]["param"] == option
    ok = httpx.post(url, headers=headers, json={"model": BASE, "messages": msgs, "n": 2, "max_tokens": None})
    assert ok.status_code == 200 and len(ok.json()["choices"]) == 2
    assert all(e.status < 500 for e in finetune_emulator.journal)


def test_async_client_cancel_errors_uploads_and_retried_faults(finetune_emulator: Emulator) -> None:
    data = jsonl(yes_no_examples(10))

    async def flow() -> None:
        client = finetune_emulator.async_client(max_retries=2)
        up = await client.uploads.create(
            bytes=len(data), filename="t.jsonl", mime_type="text/jsonl", purpose="fine-tune"
        )
        part = await client.uploads.parts.create(up.id, data=data)
        done = await client.uploads.complete(up.id, part_ids=[part.id])
        assert done.status == "completed" and done.file is not None and done.file.bytes == len(data)
        finetune_emulator.inject_fault("/v1/fine_tuning/jobs", "POST", status=429, count=1, retry_after_ms=1)
        finetune_emulator.inject_fault("/v1/fine_tuning/jobs/*", "GET", status=500, count=1, retry_after_ms=1)
        finetune_emulator.pace = 100.0  # the job stays in validation while we cancel it
        job = await client.fine_tuning.jobs.create(model=BASE, training_file=done.file.id)
        assert (await client.fine_tuning.jobs.retrieve(job.id)).status == "validating_files"
        assert (await client.fine_tuning.jobs.cancel(job.id)).status == "cancelled"
        with pytest.raises(openai.BadRequestError):
            await client.fine_tuning.jobs.cancel(job.id)
        with pytest.raises(openai.BadRequestError) as bad:
            await client.fine_tuning.jobs.create(model=BASE, training_file="file-missing")
        assert bad.value.param == "training_file"  # type: ignore[attr-defined]
        with pytest.raises(openai.NotFoundError):
            await client.fine_tuning.jobs.retrieve("ftjob-missing")
        await client.close()

    asyncio.run(flow())
    statuses = [
        (e.method, e.path.count("/"), e.status) for e in finetune_emulator.journal if "fine_tuning" in e.path
    ]
    assert statuses[:4] == [("POST", 3, 429), ("POST", 3, 200), ("GET", 4, 500), ("GET", 4, 200)]
