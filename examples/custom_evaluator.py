"""Write your own evaluators and compare a fine-tune with its base model — entirely offline.

Runs against the local emulator (no OpenAI account needed):

    python examples/custom_evaluator.py

1. starts the emulator and fine-tunes ``gpt-4o-mini`` on 60 generated NDA clauses (Yes/No labels);
2. evaluates the fine-tune and the base model on 60 held-out clauses with two built-ins and two custom
   evaluators — one plain function, one async and configurable;
3. prints the report: each metric with its 95 % interval and the paired comparison (McNemar's exact test).

Point ``client`` at a real server (``openai.OpenAI()``) to do the same with your own models.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

from finetune_wb.data.demo_dataset import DEMO_SYSTEM_PROMPT, generate_clauses
from finetune_wb.emulator import run_emulator
from finetune_wb.evaluation import ModelTarget, Score, classification, evaluate, evaluator, exact_match
from finetune_wb.schema import ChatExample

BASE_MODEL = "gpt-4o-mini-2024-07-18"


# A custom evaluator is a function of any of `output`, `target`, `example`, `prompt` (by name).
# Returning a bool makes it a pass/fail metric, compared between models with McNemar's exact test.
@evaluator
def one_word(output: str) -> bool:
    """Did the model follow the instruction to answer with one word?"""
    return len(output.split()) == 1


# Async works too (say, to call a service), and so do configuration parameters with defaults: the report
# records them, and `.configure(...)` makes a variant. Returning a Score adds an explanation to the row.
@evaluator(name="label_in_first_words")
async def label_early(output: str, target: str, within: int = 3) -> Score:
    await asyncio.sleep(0)  # stands in for real async work
    words = re.findall(r"\w+", output.lower())[:within]
    found = target.lower() in words
    return Score(value=1.0 if found else 0.0, binary=True, explanation=f"first {within} words: {words}")


def to_example(record: dict[str, str]) -> ChatExample:
    return ChatExample.model_validate(
        {
            "messages": [
                {"role": "system", "content": DEMO_SYSTEM_PROMPT},
                {"role": "user", "content": f"Clause: {record['text']}"},
                {"role": "assistant", "content": record["answer"]},
            ]
        }
    )


def fine_tune(client: object, train: list[ChatExample]) -> str:
    """Plain OpenAI calls: upload the training file, start a job, wait for the fine-tuned model."""
    data = "".join(json.dumps(ex.to_openai()) + "\n" for ex in train).encode()
    file = client.files.create(file=("train.jsonl", data), purpose="fine-tune")  # type: ignore[attr-defined]
    job = client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=file.id)  # type: ignore[attr-defined]
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.2)
        job = client.fine_tuning.jobs.retrieve(job.id)  # type: ignore[attr-defined]
    if job.status != "succeeded":
        raise SystemExit(f"fine-tuning job {job.id} ended {job.status}: {job.error}")
    return str(job.fine_tuned_model)


def main() -> None:
    records = generate_clauses(120, seed=11)
    examples = [to_example(r) for r in records]
    train, test = examples[:60], examples[60:]
    with run_emulator(pace=0.05) as emu:
        client = emu.client()
        tuned = fine_tune(client, train)
        report = evaluate(
            test,
            models=[ModelTarget(tuned, label="fine-tune"), ModelTarget(BASE_MODEL, label="base")],
            evaluators=[
                exact_match,
                classification(["Yes", "No"]),
                one_word,
                label_early,
                label_early.configure(within=10, name="label_in_first_10_words"),
            ],
            client=client,
            cache=None,
            progress=False,
        )
    print(report.summary())
    worst = report.to_pandas().query("model == 'base'").sort_values("label_in_first_words").head(3)
    print("\nBase-model answers that bury the label:")
    for output in worst["output"]:
        print("  -", output)


if __name__ == "__main__":
    main()
