"""The pytest plugin as a user's separate project sees it: auto-loaded through the ``pytest11`` entry point."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import json

import openai


def _examples():
    return [
        {"messages": [
            {"role": "user", "content": f"Is order {i} for {fruit} paid?"},
            {"role": "assistant", "content": "paid" if i % 2 else "unpaid"},
        ]}
        for i, fruit in enumerate(["apples", "pears", "plums", "figs", "kiwis", "limes",
                                   "dates", "grapes", "lemons", "melons", "mangos", "peaches"])
    ]


def test_a_fine_tune(finetune_emulator, finetune_emulator_client):
    client = finetune_emulator_client
    assert isinstance(client, openai.OpenAI)
    assert str(client.base_url).rstrip("/") == finetune_emulator.base_url
    data = "".join(json.dumps(e) + "\\n" for e in _examples()).encode()
    file = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file.id)
    for _ in range(2000):
        job = client.fine_tuning.jobs.retrieve(job.id)
        if job.status in ("succeeded", "failed", "cancelled"):
            break
    assert job.status == "succeeded", job.error
    reply = client.chat.completions.create(
        model=job.fine_tuned_model, messages=[{"role": "user", "content": "Is order 3 for figs paid?"}]
    )
    assert reply.choices[0].message.content == "paid"
    assert reply.usage.total_tokens > 0


def test_state_is_reset_between_tests(finetune_emulator, finetune_emulator_client):
    assert list(finetune_emulator_client.files.list()) == []
    assert list(finetune_emulator_client.fine_tuning.jobs.list()) == []
    assert finetune_emulator.journal[-1].path == "/v1/fine_tuning/jobs"


def test_the_async_client_across_event_loops(finetune_emulator_async_client):
    import asyncio

    async def models():
        return [m.id async for m in finetune_emulator_async_client.models.list()]

    assert asyncio.run(models()) == asyncio.run(models())


def test_the_ini_pace_applies(finetune_emulator):
    assert finetune_emulator.pace == 0.02


def test_one_server_per_session(finetune_emulator):
    with open("ports.txt", "a") as fh:
        fh.write(f"{finetune_emulator.port}\\n")


def test_one_server_per_session_again(finetune_emulator):
    test_one_server_per_session(finetune_emulator)
"""


def test_a_users_project_gets_the_fixtures_from_the_entry_point(pytester: pytest.Pytester) -> None:
    """A separate project with no conftest and no ``-p`` option: the installed plugin provides the fixtures.
    In a subprocess, so nothing of this test session's own plugin registration leaks in."""
    pytester.makeini("[pytest]\nfinetune_emulator_pace = 0.02\n")
    pytester.makepyfile(test_user_suite=USER_TESTS)
    # -W error: a leaked socket (ResourceWarning) in the user's run would fail their suite
    result = pytester.runpytest_subprocess("-q", "-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    ports = (pytester.path / "ports.txt").read_text().split()
    assert len(ports) == 2 and ports[0] == ports[1]


def test_the_plugin_can_be_disabled_and_its_fixtures_then_are_missing(pytester: pytest.Pytester) -> None:
    """The fixtures really come from the entry point named ``finetune_wb`` (not from anything else)."""
    pytester.makepyfile(test_user_suite="def test_x(finetune_emulator_client):\n    pass\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:finetune_wb", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'finetune_emulator_client' not found*"])
