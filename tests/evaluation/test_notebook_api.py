"""``evaluate`` called from a real Jupyter kernel cell, where an event loop is already running."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

BASE = "gpt-4o-mini-2024-07-18"


def test_evaluate_in_a_notebook_cell(finetune_emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "test.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "Yes"}]}
            )
            + "\n"
            for i in range(6)
        )
    )
    cells = [
        "import asyncio\nprint('loop running:', asyncio.get_event_loop().is_running())",
        "import openai\nfrom finetune_wb import evaluate\n"
        f"client = openai.OpenAI(base_url={finetune_emulator.base_url!r}, api_key='sk-test')\n"
        f"report = evaluate({str(data)!r}, models={BASE!r}, client=client, cache={str(tmp_path / 'c.db')!r})\n"
        "print('answered:', report.models[0].n_answered)",
        "report",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in nb.cells for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert "loop running: True" in text
    assert "answered: 6" in text
    rich = [o for o in outputs if o.output_type == "execute_result"]
    assert "<table>" in rich[-1]["data"]["text/html"]  # _repr_html_
    assert not [o for o in outputs if o.output_type == "error"]


def test_a_callers_async_client_still_works_on_its_own_loop_after_evaluate(
    finetune_emulator: Any, tmp_path: Path
) -> None:
    """A notebook's AsyncOpenAI, used before and after a sync ``evaluate`` inside the running loop.

    ``evaluate`` runs on a private loop; had it used (or filled) the caller's connection pool, the caller's
    next request would fail with "Event loop is closed", and pooled connections from the caller's loop
    would break rows on ours.
    """
    import asyncio

    import openai

    from finetune_wb.evaluation import evaluate

    data = tmp_path / "test.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "Yes"}]}
            )
            + "\n"
            for i in range(8)
        )
    )

    async def cell() -> tuple[int, str, int]:
        client = openai.AsyncOpenAI(base_url=finetune_emulator.base_url, api_key="sk-test", max_retries=0)
        messages: Any = [{"role": "user", "content": "hello"}]
        await client.chat.completions.create(model=BASE, messages=messages)  # a pooled connection
        report = evaluate(data, models=BASE, client=client, cache=None, progress=False)
        after = await client.chat.completions.create(model=BASE, messages=messages)
        second = evaluate(data, models=BASE, client=client, cache=None, progress=False)
        await client.close()
        return (
            report.models[0].n_answered,
            after.choices[0].message.content or "",
            second.models[0].n_answered,
        )

    answered, reply, answered_again = asyncio.run(cell())
    assert answered == 8 and reply and answered_again == 8
