"""The demo dataset that ships with the package: generated NDA clauses labelled Yes/No.

The task mirrors LegalBench's *contract_nli_explicit_identification*: does the clause provide that all
Confidential Information shall be expressly identified (marked, labelled, confirmed in writing) by the
Disclosing Party? Every clause here is written by this project from templates below — no clause is copied
from a real contract or from LegalBench — so the file can ship under the package's own licence.

The shipped file ``finetune_wb/data/contract_clauses.jsonl`` is exactly ``generate_clauses()`` written with
``write_records``; a test regenerates it and compares, so editing the templates means regenerating the file::

    python -m finetune_wb.data.demo_dataset            # rewrites the shipped JSONL

Records are ``{"text": <clause>, "answer": "Yes" | "No"}``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

DEMO_FILE_NAME = "contract_clauses.jsonl"
DEMO_N_CLAUSES = 120
DEMO_SEED = 20260106
DEMO_YES_FRACTION = 0.4

#: The instruction the demo's chat examples carry as their system message.
DEMO_SYSTEM_PROMPT = (
    "You review clauses from non-disclosure agreements. Answer Yes if the clause provides that all "
    "Confidential Information shall be expressly identified by the Disclosing Party (for example marked, "
    "labelled or confirmed in writing as confidential); otherwise answer No. Answer with one word: Yes or No."
)
#: User-message format string; ``{text}`` is the clause.
DEMO_USER_TEMPLATE = "Clause: {text}"
#: Assistant-message format string; ``{answer}`` is the label.
DEMO_ASSISTANT_TEMPLATE = "{answer}"

_DISCLOSER = ["the Disclosing Party", "the Discloser", "the Company", "the party disclosing it"]
_RECIPIENT = ["the Receiving Party", "the Recipient", "the Investor", "the Consultant"]
_LEGEND = ['"Confidential"', '"Proprietary"', '"Confidential and Proprietary"', '"Restricted"']
_DAYS = ["ten (10)", "fifteen (15)", "twenty (20)", "thirty (30)", "forty-five (45)"]
_FORMS = [
    "documents, drawings, software, samples and specifications",
    "business plans, customer lists, pricing and forecasts",
    "technical data, designs, prototypes and source code",
    "financial statements, projections and other commercial information",
]
_PURPOSE = [
    "the Proposed Transaction",
    "the Project",
    "the evaluation of a possible collaboration",
    "the Services",
]
_PREFIX = ["", "", "1. ", "2.1 ", "(a) ", "Section 3. ", "4.2 "]

# Clauses that DO require the Disclosing Party to identify the information expressly (label "Yes").
_YES = [
    "Confidential Information means all {forms} disclosed by {discloser} to {recipient} in connection with "
    "{purpose}, provided that such information is clearly marked {legend} at the time of disclosure.",
    "Information disclosed in tangible form shall be Confidential Information only if {discloser} marks it "
    "{legend}; information disclosed orally or visually shall be Confidential Information only if "
    "{discloser} identifies it as confidential at the time of disclosure and confirms it in writing within "
    "{days} days.",
    "For the purposes of this Agreement, Confidential Information is limited to information that "
    "{discloser} expressly designates as confidential in writing, whether by a legend reading {legend} or "
    "by written notice delivered to {recipient}.",
    "{discloser} shall label or stamp all written Confidential Information with the word {legend}. Where "
    "Confidential Information is communicated orally, {discloser} shall deliver to {recipient} within "
    "{days} days a written summary identifying it as confidential.",
    "No information shall be treated as Confidential Information under this Agreement unless, before or at "
    "the time of its disclosure, {discloser} has identified it in writing as confidential and marked it "
    "{legend}.",
    'The term "Confidential Information" refers only to {forms} that bear a conspicuous {legend} marking '
    "applied by {discloser}, and to oral disclosures that {discloser} reduces to writing and marks "
    "accordingly within {days} days.",
    # Near-twins of two "No" clauses below: the same words, the opposite meaning.
    "Any information that {discloser} provides to {recipient} for {purpose} is Confidential Information only "
    "if it is marked {legend} when it is provided.",
    "Oral disclosures are protected under this Agreement only if {discloser} confirms them in writing as "
    "confidential within {days} days.",
]

# Clauses that do NOT (label "No"): broad definitions, "whether or not marked", or other NDA provisions.
_NO = [
    "Confidential Information means all information relating to {purpose} that is disclosed by "
    "{discloser} to {recipient}, in any form and by any means, whether or not it is marked or otherwise "
    "identified as confidential.",
    "{recipient} shall hold the Confidential Information in strict confidence, use it solely for "
    "{purpose}, and protect it with at least the degree of care it uses for its own information of a "
    "similar nature, and in no event less than reasonable care.",
    "Confidential Information includes {forms} and any other information that a reasonable person would "
    "understand to be confidential given the nature of the information and the circumstances of its "
    "disclosure, regardless of whether it bears any legend.",
    "The obligations in this Agreement shall not apply to information that is or becomes generally "
    "available to the public other than through a breach by {recipient}, or that {recipient} can show was "
    "lawfully in its possession before disclosure by {discloser}.",
    "Upon written request of {discloser}, {recipient} shall within {days} days return or destroy all "
    "materials containing Confidential Information, including {forms}, and certify such destruction in "
    "writing.",
    "This Agreement shall remain in force for a period of {days} months from the date of signature, and "
    "the obligations of confidentiality shall survive its termination for a further three (3) years.",
    "All information disclosed by {discloser} in connection with {purpose}, whether in writing, orally or "
    "by inspection of premises, shall be deemed Confidential Information, and the absence of a {legend} "
    "marking shall not affect its status.",
    "{recipient} may disclose Confidential Information to its employees and professional advisers who need "
    "to know it for {purpose}, provided that they are bound by obligations of confidentiality no less "
    "protective than those set out herein.",
    "Any information that {discloser} provides to {recipient} for {purpose} is Confidential Information "
    "whether or not it is marked {legend} when it is provided.",
    "Oral disclosures are protected under this Agreement even if {discloser} does not confirm them in writing "
    "as confidential within {days} days.",
]


def _fill(template: str, rng: random.Random) -> str:
    text = template.format(
        discloser=rng.choice(_DISCLOSER),
        recipient=rng.choice(_RECIPIENT),
        legend=rng.choice(_LEGEND),
        days=rng.choice(_DAYS),
        forms=rng.choice(_FORMS),
        purpose=rng.choice(_PURPOSE),
    )
    # Sentences that begin with a slot ("{discloser} shall ...") need a capital letter.
    return rng.choice(_PREFIX) + text[0].upper() + text[1:]


def generate_clauses(
    n: int = DEMO_N_CLAUSES, *, seed: int = DEMO_SEED, yes_fraction: float = DEMO_YES_FRACTION
) -> list[dict[str, str]]:
    """Generate ``n`` distinct labelled clauses, deterministically for a given ``seed``.

    Returns records ``{"text", "answer"}`` in a shuffled order; about ``yes_fraction`` of them are "Yes".
    """
    if n < 2:
        raise ValueError(f"generate_clauses: n must be at least 2, got {n}")
    if not 0.0 < yes_fraction < 1.0:
        raise ValueError(
            f"generate_clauses: yes_fraction must be strictly between 0 and 1, got {yes_fraction}"
        )
    rng = random.Random(seed)
    n_yes = max(1, min(n - 1, round(n * yes_fraction)))
    seen: set[str] = set()
    records: list[dict[str, str]] = []
    for label, templates, count in (("Yes", _YES, n_yes), ("No", _NO, n - n_yes)):
        made = 0
        attempts = 0
        while made < count:
            attempts += 1
            if attempts > count * 200:  # pragma: no cover - only reachable with absurd n
                raise ValueError(f"generate_clauses: cannot make {count} distinct {label!r} clauses")
            # Cycle through the templates so every one is represented, then fill slots at random.
            text = _fill(templates[made % len(templates)], rng)
            if text in seen:
                continue
            seen.add(text)
            records.append({"text": text, "answer": label})
            made += 1
    rng.shuffle(records)
    return records


def demo_data_path() -> Path:
    """Path of the shipped JSONL file (inside the installed package)."""
    return Path(__file__).resolve().parent / DEMO_FILE_NAME


def load_demo_records() -> list[dict[str, Any]]:
    """Read the shipped demo dataset: a list of ``{"text", "answer"}`` records."""
    path = demo_data_path()
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_records(records: list[dict[str, str]], path: str | Path) -> Path:
    """Write records as JSONL (UTF-8, one object per line, keys in a fixed order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps({"text": rec["text"], "answer": rec["answer"]}, ensure_ascii=False) + "\n")
    return path


def demo_template() -> Any:
    """The demo's :class:`finetune_wb.data.template.Template` (system prompt + ``Clause: {text}`` -> ``{answer}``)."""
    from finetune_wb.data.template import Template

    return Template(system=DEMO_SYSTEM_PROMPT, user=DEMO_USER_TEMPLATE, assistant=DEMO_ASSISTANT_TEMPLATE)


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    out = write_records(generate_clauses(), demo_data_path())
    print(f"wrote {out}")
