"""LegalBench contract_nli_explicit_identification, end to end: fine-tune, track in W&B, evaluate.

Does an NDA clause provide that all Confidential Information shall be expressly identified by the
Disclosing Party? 117 labelled clauses (LegalBench, Guha et al. 2023, from ContractNLI, Koreeda & Manning
2021; CC BY 4.0). The script takes 30 of them for training (stratified, seeded), fine-tunes, and compares
the fine-tune with its base model on the rest.

    # the data from a local file, against the embedded emulator (no key, no network):
    python examples/legalbench_contract_nli.py --emulator \
        --data ../shared/legalbench/contract_nli_explicit_identification/examples.jsonl

    # the data from the Hugging Face hub, against OpenAI (asks before spending):
    OPENAI_API_KEY=... python examples/legalbench_contract_nli.py

Run it again after an interruption with the same --state file: it resumes the same job.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from finetune_wb import FineTuneError, FineTuneSession, JobSpec, Template
from finetune_wb.evaluation import classification, exact_match

HF_DATASET = "nguha/legalbench"
HF_CONFIG = "contract_nli_explicit_identification"
INSTRUCTION = (
    "Identify if the clause provides that all Confidential Information shall be expressly identified by the "
    "Disclosing Party. Answer Yes or No."
)
TEMPLATE = Template(system=INSTRUCTION, user="Clause: {text}", assistant="{answer}")

log = logging.getLogger("legalbench_contract_nli")


def load_records(data: str | None) -> list[dict[str, Any]]:
    """Both splits of the task as {"text", "answer"} records, from a local JSONL/TSV file or the hub."""
    if data:
        from finetune_wb import read_records

        records = read_records(data)
    else:
        import datasets

        try:
            splits = datasets.load_dataset(HF_DATASET, HF_CONFIG)
        except Exception as exc:
            raise SystemExit(
                f"could not load {HF_DATASET}/{HF_CONFIG} from the Hugging Face hub ({exc}); "
                "pass --data PATH to a local copy (examples.jsonl, train.tsv or test.tsv)"
            ) from exc
        records = [dict(row) for name in ("train", "test") for row in splits[name]]
    cleaned = [{"text": str(r["text"]).strip(), "answer": str(r["answer"]).strip()} for r in records]
    log.info("loaded %d clauses (%s)", len(cleaned), data or f"{HF_DATASET}/{HF_CONFIG}")
    return cleaned


def _confirm(question: str) -> bool:
    """Ask on the terminal; with no terminal to ask on (CI, a pipe), the answer is no."""
    if not sys.stdin.isatty():
        print(f"{question} no terminal to ask on", file=sys.stderr)
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except FineTuneError as exc:  # bad data path, validation errors, a failed job: say so, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="local examples.jsonl / train.tsv (default: the Hugging Face hub)")
    parser.add_argument("--emulator", action="store_true", help="run against the embedded emulator")
    parser.add_argument("--model", default="gpt-4o-mini-2024-07-18", help="base model (also the baseline)")
    parser.add_argument("--n-train", type=int, default=30)
    parser.add_argument("--n-epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--project", default="OpenAI-Fine-Tune", help="W&B project")
    parser.add_argument("--state", help="session state file (default: a new one); reuse it to resume")
    parser.add_argument("--yes", action="store_true", help="create a paid job without asking")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    records = load_records(args.data)
    with ExitStack() as stack:
        client = None
        wandb_mode = None
        state = args.state
        if args.emulator:
            from finetune_wb.emulator import run_emulator

            emu = stack.enter_context(run_emulator(pace=0.2))
            client, wandb_mode = emu.client(), "offline"
            # the emulator forgets its jobs when it stops, so an emulator run gets a fresh state file
            state = state or str(Path(stack.enter_context(tempfile.TemporaryDirectory())) / "state.json")
        session = FineTuneSession(args.project, client=client, state_path=state, wandb_mode=wandb_mode)
        log.info("session state: %s", session.state_path)

        train, test = session.prepare(records, template=TEMPLATE, n_train=args.n_train, seed=args.seed)
        log.info("%d training / %d test clauses", len(train), len(test))
        report = session.validate(model=args.model, n_epochs=args.n_epochs)
        print(report.summary())

        if session.job_id is None and not args.emulator and not args.yes:
            question = f"Create a fine-tuning job (estimated ${report.estimated_cost_usd or 0:.4f})?"
            if not _confirm(question):
                print(f"not started; pass --yes to create the job, or --state {session.state_path} to resume")
                return 1
        job = session.fine_tune(JobSpec(model=args.model, n_epochs=args.n_epochs, suffix="contract-nli"))
        log.info("job %s", job.id)
        job = session.wait()
        log.info("fine-tuned model %s", job.fine_tuned_model)

        result = session.evaluate(
            baselines=[args.model],
            evaluators=[exact_match, classification(labels=["Yes", "No"])],
            max_tokens=16,
        )
        print(result.summary())
        return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
