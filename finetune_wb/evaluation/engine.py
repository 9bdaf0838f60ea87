"""The evaluation engine: ask every model every prompt, fast, politely, once.

Written once, async (``aevaluate``); ``evaluate`` wraps it and also works where an event loop is already
running (a Jupyter cell) by running the coroutine on a worker thread with a loop of its own.

Per request: take a concurrency slot (AIMD-adaptive), wait for the RPM/TPM buckets, call the server with the
``openai`` client's own retries off, and on a transient failure release the slot, back off as the project's
:class:`~finetune_wb._retry.RetryPolicy` says (honouring ``retry-after-ms`` / ``retry-after``) and try again;
a 429 also halves the concurrency. Each answer is committed to the SQLite cache as it arrives. A row that
still fails keeps its error, is not scored, and is asked again on the next run.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from finetune_wb.errors import EvaluationError
from finetune_wb.evaluation.cache import AnswerCache, cache_key, default_cache_path
from finetune_wb.evaluation.limits import AdaptiveLimit, TokenBucket
from finetune_wb.evaluation.transport import DirectPost, describe_error, parse_completion, send

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb._retry import RetryPolicy
    from finetune_wb.evaluation.report import EvalReport


_PRIVATE_LOOP: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "finetune_wb_private_loop", default=False
)
"""True while the sync :func:`evaluate` runs the engine on an event loop of its own."""

UNREACHED_ATTEMPTS = 3
"""Attempts per request while a server has not sent a single HTTP response this run. Connection failures
to a server that did answer are retried as the retry policy says; to one that never did (a wrong
OPENAI_BASE_URL, a server that is down) the rows give up after a few seconds, keep the error, and are asked
again on the next run."""

DEFAULT_CONCURRENCY = 64
"""Requests in flight by default. A pipe 16 wide cannot make a 100 ms server more than ~16x faster than a
serial loop; measured on a 2-core machine, 64 beat 32 in every paired run (0.9-1.5 s vs 1.3-2.0 s for 300
answers). Servers that push back get fewer: the AIMD limit halves on each burst of 429s."""


@dataclass
class ModelTarget:
    """A model to evaluate; ``client`` (sync or async OpenAI client) lets each model live on its own server.

    ``label`` names the model in reports and W&B (default: ``name``).
    """

    name: str
    client: Any = None
    label: str | None = None

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass
class _Resolved:
    target: ModelTarget
    label: str
    aclient: Any
    base_url: str
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


@dataclass
class _Answer:
    output: str | None = None
    error: str | None = None
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _request_tokens(messages: list[dict[str, Any]], max_tokens: int) -> int:
    """A cheap upper-ish estimate for the TPM bucket: ~4 characters a token, plus the answer budget."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return chars // 4 + 4 * len(messages) + max_tokens


class _Engine:
    def __init__(
        self,
        *,
        concurrency: int,
        rpm: float | None,
        tpm: float | None,
        cache: AnswerCache | None,
        retry: RetryPolicy,
        default_client: Any,
    ) -> None:
        self.slots = AdaptiveLimit(concurrency)
        self.rpm = TokenBucket(rpm, capacity=1.5, initial=1.0) if rpm else None
        self.tpm = TokenBucket(tpm, capacity=tpm / 60.0 * 5) if tpm else None
        self.cache = cache
        self.retry = retry
        self.default_client = default_client
        self._clients: dict[int, tuple[Any, str, Any]] = {}  # id(source) -> (client, base URL, source)
        self._owned: list[Any] = []  # clients built here (closed at the end); callers' clients are theirs
        self._direct: dict[int, tuple[Any, DirectPost | None]] = {}
        self._pending: dict[str, asyncio.Future[_Answer]] = {}
        self._reached: set[int] = set()  # ids of clients whose server sent any HTTP response this run

    def client_for(self, client: Any) -> tuple[Any, str]:
        """An async client (own retries off) and its base URL, built once per distinct client object."""
        from finetune_wb._client import base_url_of, get_async_client, without_retries

        source = client if client is not None else self.default_client
        key = id(source)
        if key not in self._clients:
            if source is not None and not _is_openai_client(source):
                aclient = source  # a duck-typed async client (tests, custom transports)
            else:
                import openai

                built = not isinstance(source, openai.AsyncOpenAI)
                aclient = get_async_client(source)
                if built:
                    self._owned.append(aclient)
                elif _PRIVATE_LOOP.get():
                    aclient = self._fresh_pool(aclient)
            aclient = without_retries(aclient)
            self._clients[key] = (aclient, base_url_of(aclient), source)
        aclient, base_url, _ = self._clients[key]
        return aclient, base_url

    def _fresh_pool(self, aclient: Any) -> Any:
        """The caller's ``AsyncOpenAI`` with a connection pool of its own for this evaluation's event loop.

        The sync :func:`evaluate` runs on a private event loop that is closed when it returns. Connections
        opened on it must not land in the caller's pool (their next request on their own loop would fail
        with "Event loop is closed"), and connections the caller opened on their loop must not be used on
        ours. A client with openai's default HTTP client gets a fresh default one here (closed at the end);
        a custom ``http_client`` is the caller's to manage and is used as it is.
        """
        import openai

        try:
            if not isinstance(aclient._client, openai.DefaultAsyncHttpxClient):
                return aclient
            copy = aclient.copy(http_client=openai.DefaultAsyncHttpxClient())
        except Exception:  # a future openai without these: share the caller's pool as before
            return aclient
        self._owned.append(copy)
        return copy

    def _direct_for(self, aclient: Any) -> DirectPost | None:
        """The direct poster for a client (the client is kept alongside, so its id cannot be reused)."""
        entry = self._direct.get(id(aclient))
        if entry is None or entry[0] is not aclient:
            entry = (aclient, DirectPost.for_client(aclient))
            self._direct[id(aclient)] = entry
        return entry[1]

    async def aclose(self) -> None:
        for client in self._owned:
            await client.close()
        self._owned.clear()

    async def answer(
        self,
        aclient: Any,
        base_url: str,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        stats: _Resolved | None = None,
    ) -> _Answer:
        key = cache_key(base_url, model, messages, params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return _Answer(
                    output=hit.output,
                    cached=True,
                    prompt_tokens=hit.prompt_tokens,
                    completion_tokens=hit.completion_tokens,
                    finish_reason=hit.finish_reason,
                )
        pending = self._pending.get(key)
        if pending is not None:  # the same request is in flight (e.g. a judge asked twice): share it
            shared: _Answer = await asyncio.shield(pending)
            return _Answer(**{**shared.__dict__, "cached": shared.output is not None})
        future: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = await self._fetch(key, aclient, base_url, model, messages, params, stats)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(answer)
        return answer

    async def _fetch(
        self,
        key: str,
        aclient: Any,
        base_url: str,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        stats: _Resolved | None,
    ) -> _Answer:
        try:
            response = await self._call(aclient, model, messages, params, stats)
        except Exception as exc:
            return _Answer(error=describe_error(exc))
        parsed = parse_completion(response)
        if self.cache is not None:
            self.cache.put(key, base_url=base_url, model=model, answer=parsed)
        return _Answer(**parsed.model_dump())

    async def _call(
        self,
        aclient: Any,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        stats: _Resolved | None,
    ) -> Any:
        from finetune_wb._retry import status_code_of

        tokens = _request_tokens(messages, int(params.get("max_tokens") or 0))
        attempt = 0
        while True:
            attempt += 1
            generation = await self.slots.acquire()
            try:
                if self.rpm is not None:
                    await self.rpm.acquire(1)
                if self.tpm is not None:
                    await self.tpm.acquire(tokens)
                if stats is not None:
                    stats.requests += 1
                try:
                    response = await send(aclient, self._direct_for(aclient), model, messages, params)
                except Exception as exc:
                    error: Exception = exc
                else:
                    self.slots.succeeded()
                    self._reached.add(id(aclient))
                    return response
            finally:
                await self.slots.release()
            if status_code_of(error) is not None:
                self._reached.add(id(aclient))  # the server answered, if only with an error
            elif id(aclient) not in self._reached and attempt >= UNREACHED_ATTEMPTS:
                raise error  # a server that never answered this run (wrong URL, down): do not wait minutes
            if not self.retry.retry_on(error) or attempt >= self.retry.max_attempts:
                raise error
            if status_code_of(error) == 429:
                self.slots.rate_limited(generation)
                if stats is not None:
                    stats.rate_limited += 1
            if stats is not None:
                stats.retries += 1
            wait = self.retry.wait_seconds(error, attempt)
            if self.retry.on_retry is not None:
                self.retry.on_retry(error, attempt, wait)
            await self.retry.async_sleep(wait)


def _is_openai_client(obj: Any) -> bool:
    import openai

    return isinstance(obj, (openai.OpenAI, openai.AsyncOpenAI))


class JudgeContext:
    """What a model-calling evaluator (``llm_judge``) gets: the engine's limits, retries and cache."""

    def __init__(self, engine: _Engine, *, temperature: float) -> None:
        self._engine = engine
        self._temperature = temperature

    async def complete(
        self, model: str, messages: list[dict[str, Any]], *, client: Any = None, max_tokens: int = 512
    ) -> str:
        aclient, base_url = self._engine.client_for(client)
        params = {"max_tokens": max_tokens, "temperature": self._temperature}
        answer = await self._engine.answer(aclient, base_url, model, messages, params)
        if answer.error is not None:
            raise EvaluationError(f"judge model {model!r} did not answer: {answer.error}")
        return answer.output or ""


ModelsArg = Union[
    str,
    ModelTarget,
    "tuple[str, Any]",
    Sequence[Union[str, ModelTarget, "tuple[str, Any]"]],
    Mapping[str, Any],
]
"""What ``models=`` takes: a name, a ModelTarget, a (name, client) pair, a list of those, or {name: client}."""


def _targets(models: Any) -> list[ModelTarget]:
    """``models=``: a name, a ModelTarget, a ``(name, client)`` pair, a list of those, or ``{name: client}``."""
    if isinstance(models, dict):
        items: list[Any] = [ModelTarget(str(name), client=c) for name, c in models.items()]
    elif isinstance(models, (str, ModelTarget)) or _is_pair(models):
        items = [models]
    else:
        items = list(models or [])
    if not items:
        raise EvaluationError("models= is empty; pass a model name, a list of names or ModelTarget objects")
    out: list[ModelTarget] = []
    for m in items:
        if isinstance(m, ModelTarget):
            out.append(m)
        elif isinstance(m, str):
            out.append(ModelTarget(m))
        elif _is_pair(m):
            out.append(ModelTarget(m[0], client=m[1]))
        else:
            raise EvaluationError(
                f"models= item {m!r} is not a model: pass a name, (name, client) or ModelTarget(name, client=...)"
            )
    return out


def _is_pair(obj: Any) -> bool:
    return (
        isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and not isinstance(obj[1], str)
    )


def _unique_labels(targets: Sequence[ModelTarget]) -> list[str]:
    labels: list[str] = []
    for t in targets:
        label, n = t.display, 2
        while label in labels:
            label = f"{t.display}#{n}"
            n += 1
        labels.append(label)
    return labels


async def aevaluate(
    examples: Any,
    *,
    models: ModelsArg,
    evaluators: Any = None,
    client: Any = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    rpm: float | None = None,
    tpm: float | None = None,
    max_tokens: int = 256,
    temperature: float = 0,
    cache: bool | str | Path | None = True,
    run: Any = None,
    progress: bool = True,
    retry: RetryPolicy | None = None,
    seed: int = 0,
    prices: dict[str, tuple[float, float]] | None = None,
    lineage: Sequence[Any] = (),
) -> EvalReport:
    """Evaluate ``models`` on ``examples``; the async form of :func:`evaluate` (same arguments)."""
    from finetune_wb._progress import progress_bar
    from finetune_wb._retry import RetryPolicy
    from finetune_wb.evaluation.evaluators import resolve_evaluators
    from finetune_wb.evaluation.inputs import load_eval_examples
    from finetune_wb.evaluation.report import build_report
    from finetune_wb.evaluation.scoring import score_all

    started = time.monotonic()
    loaded = load_eval_examples(examples)
    exs = loaded.examples
    evs = resolve_evaluators(evaluators)
    targets = _targets(models)
    labels = _unique_labels(targets)
    if cache is True:
        store: AnswerCache | None = AnswerCache(default_cache_path())
    elif cache in (None, False):
        store = None
    else:
        store = AnswerCache(Path(cache))  # type: ignore[arg-type]
    policy = retry if retry is not None else RetryPolicy(max_attempts=8)
    engine = _Engine(
        concurrency=concurrency, rpm=rpm, tpm=tpm, cache=store, retry=policy, default_client=client
    )
    params = {"max_tokens": max_tokens, "temperature": temperature}
    prompts = [ex.prompt_messages() for ex in exs]
    resolved: list[_Resolved] = []
    for target, label in zip(targets, labels, strict=True):
        aclient, base_url = engine.client_for(target.client)
        resolved.append(_Resolved(target=target, label=label, aclient=aclient, base_url=base_url))

    judge = JudgeContext(engine, temperature=temperature)
    targets_text = [ex.target for ex in exs]
    for ev in evs:
        if hasattr(ev, "bind"):
            ev.bind(judge)
        if hasattr(ev, "prepare"):
            ev.prepare(targets_text)

    answers: list[list[_Answer]] = [[_Answer() for _ in exs] for _ in resolved]
    bars = [
        progress_bar(len(exs), desc=r.label, disable=not progress, unit="row", position=i)
        for i, r in enumerate(resolved)
    ]

    async def one(m: int, i: int) -> None:
        r = resolved[m]
        answers[m][i] = await engine.answer(r.aclient, r.base_url, r.target.name, prompts[i], params, r)
        bars[m].update(1)

    try:
        # Interleave models so that a slow or failing model does not starve the others of slots.
        await asyncio.gather(*(one(m, i) for i in range(len(exs)) for m in range(len(resolved))))
    finally:
        for bar in bars:
            bar.close()

    try:
        scored = await score_all(evs, exs, answers)
    finally:
        await engine.aclose()
        if store is not None:
            store.close()
    report = build_report(
        examples=exs,
        resolved=resolved,
        answers=answers,
        scored=scored,
        evaluators=evs,
        params={**params, "concurrency": concurrency, "rpm": rpm, "tpm": tpm},
        seed=seed,
        prices=prices,
        elapsed=time.monotonic() - started,
        source=loaded.source,
    )
    if run is not None:
        from finetune_wb.evaluation.wandb_log import log_report

        log_report(report, run, lineage=[*loaded.artifacts, *lineage])
    return report


def evaluate(
    examples: Any,
    *,
    models: ModelsArg,
    evaluators: Any = None,
    client: Any = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    rpm: float | None = None,
    tpm: float | None = None,
    max_tokens: int = 256,
    temperature: float = 0,
    cache: bool | str | Path | None = True,
    run: Any = None,
    progress: bool = True,
    retry: RetryPolicy | None = None,
    seed: int = 0,
    prices: dict[str, tuple[float, float]] | None = None,
    lineage: Sequence[Any] = (),
) -> EvalReport:
    """Evaluate one or more models on ``examples`` and compare them; see the docs page "Evaluation".

    Args:
        examples: ``ChatExample`` objects (or dicts), a JSONL path, or a W&B dataset artifact
            (``wandb.Artifact`` or ``finetune_wb.tracking.ArtifactRef``). The prompt is every message before
            the last assistant message; the target is that message.
        models: a model name, or several: a list of names, ``(name, client)`` pairs or :class:`ModelTarget`
            objects, or a ``{name: client}`` dict (a client of None means ``client``). Each model may so
            live on its own OpenAI-compatible server.
        evaluators: evaluator functions/objects, built-in factories, or spec texts such as
            ``"contains:Yes"``, ``"classification:Yes|No"`` or ``"team_evals:my_score"`` (see the docs page,
            "Choosing evaluators by name"); default ``exact_match``.
        client: the default OpenAI client (sync or async); None builds one from the environment.
        concurrency: the most requests in flight (lowered automatically after 429 answers).
        rpm, tpm: client-side requests / tokens per minute limits (None: no limit).
        max_tokens, temperature: generation parameters (part of the cache key).
        cache: True for the default SQLite cache under the state directory, a path for another file,
            None/False for none.
        run: a W&B run to log the evaluation to (never finished here).
        progress: show a progress bar per model.
        retry: the :class:`~finetune_wb._retry.RetryPolicy` (default: 8 attempts, honouring retry-after).
        seed: seed of the bootstrap resampling.
        prices: ``{model prefix: (USD per 1M input tokens, USD per 1M output tokens)}`` overrides.
        lineage: extra artifacts (e.g. the fine-tuned model's) to record as inputs of the W&B run.
    """
    options = {name: value for name, value in locals().items() if name != "examples"}

    async def on_private_loop() -> EvalReport:
        _PRIVATE_LOOP.set(True)
        return await aevaluate(examples, **options)

    coro = on_private_loop()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # A loop is already running on this thread (Jupyter): run ours on a worker thread and wait for it.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="finetune-wb-eval") as pool:
        return pool.submit(asyncio.run, coro).result()
