"""The evaluation engine: ask every model every prompt, fast, politely, once; then score and report.

Written once, async (``aevaluate``); ``evaluate`` wraps it and also works where an event loop is already
running (a Jupyter cell) by running the coroutine on a worker thread with a loop of its own.

The requests go through an :class:`~finetune_wb.evaluation.answering.Answerer` (limits, retries, cache);
the settings come in one :class:`~finetune_wb.evaluation.options.EvalOptions`. A row that still fails keeps
its error, is not scored, and is asked again on the next run.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb.evaluation.answering import PRIVATE_LOOP, Answer, Answerer, EngineJudge
from finetune_wb.evaluation.cache import AnswerCache, default_cache_path
from finetune_wb.evaluation.options import EvalOptions
from finetune_wb.evaluation.targets import ModelsArg, ResolvedModel, resolve_targets, unique_labels

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from finetune_wb.evaluation.options import EvalKwargs
    from finetune_wb.evaluation.report import EvalReport

__all__ = ["aevaluate", "evaluate"]


async def aevaluate(
    examples: Any,
    *,
    models: ModelsArg,
    evaluators: Any = None,
    options: EvalOptions | None = None,
    **overrides: Unpack[EvalKwargs],
) -> EvalReport:
    """Evaluate ``models`` on ``examples``; the async form of :func:`evaluate` (same arguments)."""
    opts = EvalOptions.merged(options, overrides, caller="aevaluate")
    return await _run(examples, models=models, evaluators=evaluators, opts=opts)


def evaluate(
    examples: Any,
    *,
    models: ModelsArg,
    evaluators: Any = None,
    options: EvalOptions | None = None,
    **overrides: Unpack[EvalKwargs],
) -> EvalReport:
    """Evaluate one or more models on ``examples`` and compare them; see the docs page "Evaluation".

    Args:
        examples: ``ChatExample`` objects (or dicts), a JSONL path, or a W&B dataset artifact
            (``wandb.Artifact`` or ``finetune_wb.tracking.ArtifactRef``). The prompt is every message before
            the last assistant message (with the example's tools); the target is that message (text or tool
            calls). DPO lines are accepted: the prompt is ``input``, the default evaluator ``preference``.
        models: a model name, or several: a list of names, ``(name, client)`` pairs or
            :class:`~finetune_wb.evaluation.ModelTarget` objects, or a ``{name: client}`` dict (a client of
            None means the options' ``client``). Each model may so live on its own OpenAI-compatible server.
        evaluators: evaluator functions/objects, built-in factories, or spec texts such as
            ``"contains:Yes"``, ``"classification:Yes|No"`` or ``"team_evals:my_score"`` (see the docs page,
            "Choosing evaluators by name"); default ``exact_match``.
        options: the evaluation's settings as one :class:`~finetune_wb.evaluation.EvalOptions`.
        **overrides: any of its fields as keywords (``client``, ``concurrency``, ``rpm``, ``tpm``,
            ``max_tokens``, ``temperature``, ``cache``, ``run``, ``progress``, ``retry``, ``seed``, ``prices``,
            ``lineage``, ``tool_choice``, ``response_format``, ``turns``, ``mode``, ``batch``), applied over
            ``options``; see :class:`~finetune_wb.evaluation.EvalOptions`. ``mode="batch"`` asks the rows
            missing from the answer cache through the Batch API first (see the docs page, "Batch mode").
    """
    opts = EvalOptions.merged(options, overrides, caller="evaluate")

    async def on_private_loop() -> EvalReport:
        PRIVATE_LOOP.set(True)
        return await aevaluate(examples, models=models, evaluators=evaluators, options=opts)

    coro = on_private_loop()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # A loop is already running on this thread (Jupyter): run ours on a worker thread and wait for it.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="finetune-wb-eval") as pool:
        return pool.submit(asyncio.run, coro).result()


def _answer_cache(cache: bool | str | Path | None) -> AnswerCache | None:
    if cache is True:
        return AnswerCache(default_cache_path())
    if cache is None or cache is False:
        return None
    return AnswerCache(Path(cache))


async def _run(examples: Any, *, models: ModelsArg, evaluators: Any, opts: EvalOptions) -> EvalReport:
    from finetune_wb._progress import progress_bar
    from finetune_wb._retry import RetryPolicy
    from finetune_wb.evaluation.aggregate import build_report
    from finetune_wb.evaluation.eval_examples import expand_turns, is_preference
    from finetune_wb.evaluation.inputs import load_eval_examples
    from finetune_wb.evaluation.requests import check_tool_choice, normalise_response_format, request_extras
    from finetune_wb.evaluation.resolution import resolve_evaluators
    from finetune_wb.evaluation.scoring import score_all

    started = time.monotonic()
    tool_choice = check_tool_choice(opts.tool_choice)  # bad options fail before any request
    response_format = normalise_response_format(opts.response_format)
    loaded = load_eval_examples(examples)
    exs = expand_turns(loaded.examples) if opts.turns == "all" else loaded.examples
    if evaluators is None and exs and all(is_preference(ex) for ex in exs):
        evaluators = ["preference"]  # DPO test data: is the answer closer to the preferred output?
    evs = resolve_evaluators(evaluators)
    targets = resolve_targets(models)
    labels = unique_labels(targets)
    store = _answer_cache(opts.cache)
    answerer = Answerer(
        concurrency=opts.concurrency,
        rpm=opts.rpm,
        tpm=opts.tpm,
        cache=store,
        retry=opts.retry if opts.retry is not None else RetryPolicy(max_attempts=8),
        default_client=opts.client,
    )
    params = {"max_tokens": opts.max_tokens, "temperature": opts.temperature}
    prompts = [ex.prompt_messages() for ex in exs]
    # per row: the generation parameters plus the example's tools and the output constraints (all in the key)
    row_params = [
        {**params, **request_extras(ex, tool_choice=tool_choice, response_format=response_format)}
        for ex in exs
    ]
    resolved: list[ResolvedModel] = []
    for target, label in zip(targets, labels, strict=True):
        aclient, base_url = answerer.client_for(target.client)
        resolved.append(ResolvedModel(target=target, label=label, aclient=aclient, base_url=base_url))

    judge = EngineJudge(answerer, temperature=opts.temperature)
    targets_text = [ex.target for ex in exs]
    for ev in evs:
        if hasattr(ev, "bind"):
            ev.bind(judge)
        if hasattr(ev, "prepare"):
            ev.prepare(targets_text)

    answers: list[list[Answer]] = [[Answer() for _ in exs] for _ in resolved]
    batched = None
    if opts.mode == "batch":  # fill the cache through the Batch API; the usual path below then finds it
        from finetune_wb.evaluation.batch.runner import run_batches
        from finetune_wb.evaluation.batch.settings import BatchOptions

        try:
            batched = await run_batches(
                resolved=resolved,
                prompts=prompts,
                params=params,
                cache=store,
                settings=opts.batch or BatchOptions(),
                retry=answerer.retry,
                progress=opts.progress,
                name=f"{loaded.source} [{', '.join(labels)}]",
                prices=opts.prices,
                row_params=row_params,
            )
        except BaseException:
            await answerer.aclose()
            if store is not None:
                store.close()
            raise
    bars = [
        progress_bar(len(exs), desc=r.label, disable=not opts.progress, unit="row", position=i)
        for i, r in enumerate(resolved)
    ]

    async def one(m: int, i: int) -> None:
        r = resolved[m]
        if batched is not None and (m, i) in batched.blocked:  # in a running batch, or its line failed
            answers[m][i] = Answer(error=batched.blocked[(m, i)])
            bars[m].update(1)
            return
        answers[m][i] = await answerer.answer(
            r.aclient, r.base_url, r.target.name, prompts[i], row_params[i], r.counts
        )
        bars[m].update(1)

    try:
        try:
            # Interleave models so that a slow or failing model does not starve the others of slots.
            tasks = [asyncio.ensure_future(one(m, i)) for i in range(len(exs)) for m in range(len(resolved))]
            try:
                await asyncio.gather(*tasks)
            except BaseException:  # e.g. the cache file broke: stop the other rows before closing it
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            for bar in bars:
                bar.close()
        scored = await score_all(evs, exs, answers)
    finally:
        await answerer.aclose()
        if store is not None:
            store.close()  # also drops any claim still held in it
    shaping = {"tool_choice": tool_choice, "response_format": response_format}
    shaping = {k: v for k, v in shaping.items() if v is not None}
    if opts.turns != "last":
        shaping["turns"] = opts.turns
    report = build_report(
        examples=exs,
        resolved=resolved,
        answers=answers,
        scored=scored,
        evaluators=evs,
        params={**params, **shaping, "concurrency": opts.concurrency, "rpm": opts.rpm, "tpm": opts.tpm},
        seed=opts.seed,
        prices=opts.prices,
        elapsed=time.monotonic() - started,
        source=loaded.source,
    )
    if batched is not None:
        from finetune_wb.evaluation.batch.report import with_batches

        report = with_batches(report, batched, opts.batch.discount if opts.batch else None)
    if opts.run is not None:
        from finetune_wb.evaluation.wandb_log import log_report

        log_report(report, opts.run, lineage=[*loaded.artifacts, *opts.lineage])
    return report
