"""Asking a model: the client pool, pacing, retries, the answer cache and in-flight sharing.

:class:`Answerer` is what the engine and a judging evaluator send requests through. Per request: take a
concurrency slot (AIMD-adaptive), wait for the RPM/TPM buckets, call the server with the ``openai`` client's
own retries off, and on a transient failure release the slot, back off as the project's
:class:`~finetune_wb._retry.RetryPolicy` says (honouring ``retry-after-ms`` / ``retry-after``) and try again;
a 429 also halves the concurrency. Each answer is committed to the SQLite cache as it arrives; a request that
still fails returns its error (never cached).

With a cache, a request is first *claimed* in it (across processes): when another live process has claimed
the same request, this one waits for that answer (polling the cache, at most the client's request timeout)
instead of paying for it a second time; past that bound the row keeps an error saying so.

A model the server refuses (HTTP 404, 401 or 403: a wrong model id, or one this key may not use) is not
transient: the first request to each (server, model) goes out alone, and when it is refused the other rows
of that model are not sent at all; they keep an error naming the model and what to do
(:data:`REFUSED_PREFIX`). The other models of the evaluation carry on.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import EvalCacheError, EvaluationError
from finetune_wb.evaluation.cache import AnswerCache, CachedAnswer, Claim, cache_key
from finetune_wb.evaluation.http_clients import fresh_http_client, with_fast_transport
from finetune_wb.evaluation.limits import AdaptiveLimit, TokenBucket
from finetune_wb.evaluation.refusals import REFUSED_PREFIX, REFUSED_STATUS, refusal_message
from finetune_wb.evaluation.transport import DirectPost, describe_error, parse_completion, send

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb._retry import RetryPolicy
    from finetune_wb.evaluation.targets import RequestCounts


PRIVATE_LOOP: contextvars.ContextVar[bool] = contextvars.ContextVar("finetune_wb_private_loop", default=False)


"""True while the sync ``evaluate`` runs the engine on an event loop of its own (see
:meth:`Answerer.client_for`)."""


UNREACHED_ATTEMPTS = 3


"""Attempts per request while a server has not sent a single HTTP response this run. Connection failures
to a server that did answer are retried as the retry policy says; to one that never did (a wrong
OPENAI_BASE_URL, a server that is down) the rows give up after a few seconds, keep the error, and are asked
again on the next run."""


CLAIM_GRACE_S = 30.0


"""A claim in the cache holds for the request timeout plus this; past it, another process takes it over."""


DEFAULT_REQUEST_TIMEOUT_S = 600.0


"""The request timeout assumed for a client that does not say its own (openai's default)."""


"""Answers that refuse the model itself (not found, not allowed): never retried, asked once per model."""


"""How the error of a row begins when its model was refused by an earlier request and it was not sent."""


class _WaitedTooLong(Exception):
    """Another process kept a request claimed for longer than this one waits."""


class _ModelRefused(Exception):
    """The server refused this model on an earlier request; this row is not sent."""


class _RefusedHere(Exception):
    """The server refused this model on this request (the message says which and what to do)."""


@dataclass
class Answer:
    """One model's answer to one prompt; ``output`` is None when it has none (``error`` says why)."""

    output: str | None = None
    error: str | None = None
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    """How long the request that answered it took (None for an answer from the cache)."""
    tool_calls: list[dict[str, str]] | None = None
    refusal: str | None = None


def _request_tokens(messages: list[dict[str, Any]], max_tokens: int) -> int:
    """A cheap upper-ish estimate for the TPM bucket: ~4 characters a token, plus the answer budget."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return chars // 4 + 4 * len(messages) + max_tokens


class Answerer:
    """Sends chat requests for one evaluation: one async client per distinct client, shared limits."""

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
        self._pending: dict[str, asyncio.Future[Answer]] = {}
        self._reached: set[int] = set()  # ids of clients whose server sent any HTTP response this run
        # Per (client id, model): the first request goes out alone (a probe); "open" once one was not refused,
        # else the refusal message; waiters wait on the probe's event.
        self._model_ok: set[tuple[int, str]] = set()
        self._refused: dict[tuple[int, str], str] = {}
        self._probing: dict[tuple[int, str], asyncio.Event] = {}
        self._latency_ms: dict[str, float] = {}  # request key -> time of the request that answered it

    def client_for(self, client: Any) -> tuple[Any, str]:
        """An async client (own retries off) and its base URL, built once per distinct client object."""
        from finetune_wb._client import base_url_of, get_async_client, without_retries

        source = client if client is not None else self.default_client
        key = id(source)
        if key not in self._clients:
            if source is not None and not _is_openai_client(source):
                aclient = source  # a duck-typed async client (tests, custom transports)
                if getattr(source, "closed_by_engine", False):  # e.g. the CLI's light client
                    self._owned.append(aclient)
            else:
                import openai

                built = not isinstance(source, openai.AsyncOpenAI)
                aclient = get_async_client(source)
                if built:
                    aclient = with_fast_transport(aclient)  # openai's aiohttp transport when installed
                    self._owned.append(aclient)
                elif PRIVATE_LOOP.get():
                    aclient = self._fresh_pool(aclient)
            aclient = without_retries(aclient)
            self._clients[key] = (aclient, base_url_of(aclient), source)
        aclient, base_url, _ = self._clients[key]
        return aclient, base_url

    def _fresh_pool(self, aclient: Any) -> Any:
        """The caller's ``AsyncOpenAI`` with a connection pool of its own for this evaluation's event loop.

        The sync ``evaluate`` runs on a private event loop that is closed when it returns. Connections
        opened on it must not land in the caller's pool (their next request on their own loop would fail
        with "Event loop is closed"), and connections the caller opened on their loop must not be used on
        ours. A client with openai's default HTTP client gets a fresh default one here (closed at the end);
        a custom ``http_client`` is the caller's to manage and is used as it is.
        """
        import openai

        try:
            if not isinstance(aclient._client, openai.DefaultAsyncHttpxClient):
                return aclient
            copy = aclient.copy(http_client=fresh_http_client())
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
        counts: RequestCounts | None = None,
    ) -> Answer:
        key = cache_key(base_url, model, messages, params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return Answer(
                    output=hit.output,
                    cached=True,
                    prompt_tokens=hit.prompt_tokens,
                    completion_tokens=hit.completion_tokens,
                    finish_reason=hit.finish_reason,
                    tool_calls=hit.tool_calls,
                    refusal=hit.refusal,
                )
        pending = self._pending.get(key)
        if pending is not None:  # the same request is in flight (e.g. a judge asked twice): share it
            shared: Answer = await asyncio.shield(pending)
            return Answer(**{**shared.__dict__, "cached": shared.output is not None})
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = await self._fetch(key, aclient, base_url, model, messages, params, counts)
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
        counts: RequestCounts | None,
    ) -> Answer:
        try:
            response = await self._call(key, aclient, model, messages, params, counts)
        except _WaitedTooLong as exc:
            return Answer(error=str(exc))
        except _ModelRefused as exc:  # refused on an earlier row: nothing was sent, nothing claimed
            return Answer(error=str(exc))
        except EvalCacheError:
            raise
        except BaseException as exc:
            if self.cache is not None:  # failed or cancelled: let another process (or the next run) ask it
                try:
                    self.cache.release(key)
                except EvalCacheError:
                    if isinstance(exc, Exception):
                        raise
            if not isinstance(exc, Exception):
                raise
            return Answer(error=str(exc) if isinstance(exc, _RefusedHere) else describe_error(exc))
        if isinstance(response, CachedAnswer):  # another process answered it while this one waited
            return Answer(**response.model_dump(), cached=True)
        parsed = parse_completion(response)
        if self.cache is not None:
            self.cache.put(key, base_url=base_url, model=model, answer=parsed)  # also drops the claim
        return Answer(**parsed.model_dump(), latency_ms=self._latency_ms.pop(key, None))

    async def _await_model(self, gate: tuple[int, str]) -> bool:
        """Wait until ``gate``'s model is known to be served (False) or this request is its probe (True);
        raises :class:`_ModelRefused` when an earlier request of that model was refused."""
        while gate not in self._model_ok:
            refused = self._refused.get(gate)
            if refused is not None:
                raise _ModelRefused(REFUSED_PREFIX + refused.removeprefix("model "))
            event = self._probing.get(gate)
            if event is None:
                self._probing[gate] = asyncio.Event()
                return True
            await event.wait()
        return False

    def _settle_model(self, gate: tuple[int, str], refused: str | None) -> None:
        """The probe of ``gate`` learnt something: the model is served (None) or refused (the message)."""
        if refused is None:
            self._model_ok.add(gate)
        else:
            self._refused[gate] = refused
        self._end_probe(gate)

    def _end_probe(self, gate: tuple[int, str]) -> None:
        """Wake the rows waiting on ``gate`` (one becomes the next probe if nothing was learnt)."""
        event = self._probing.pop(gate, None)
        if event is not None:
            event.set()

    async def _call(
        self,
        key: str,
        aclient: Any,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        counts: RequestCounts | None,
    ) -> Any:
        """The server's response; or, when another process held the claim, the answer it stored."""
        gate = (id(aclient), model)
        probe = await self._await_model(gate)
        try:
            return await self._call_gated(
                key, aclient, model, messages, params, counts, gate if probe else None
            )
        finally:
            if probe:
                self._end_probe(gate)  # ended (or was cancelled) without an answer either way: next one tries

    async def _call_gated(
        self,
        key: str,
        aclient: Any,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        counts: RequestCounts | None,
        probe: tuple[int, str] | None,
    ) -> Any:
        """:meth:`_call` once the model may be asked; ``probe`` is the gate when this is its first request."""
        from finetune_wb._client import base_url_of
        from finetune_wb._retry import status_code_of

        tokens = _request_tokens(messages, int(params.get("max_tokens") or 0))
        timeout = request_timeout_of(aclient)
        hold = timeout + CLAIM_GRACE_S
        attempt = 0
        claimed_at: float | None = None if self.cache is not None else 0.0
        waiting_since: float | None = None
        while True:
            generation = await self.slots.acquire()
            other: Claim | None = None
            try:
                if claimed_at is None and self.cache is not None:
                    state = self.cache.claim(key, hold_s=hold)
                    if isinstance(state, CachedAnswer):
                        return state
                    if isinstance(state, Claim):
                        other = state
                        if probe is not None:  # do not hold the model's other rows while waiting on a claim
                            self._end_probe(probe)
                            probe = None
                    else:
                        claimed_at = time.monotonic()
                if other is None:
                    attempt += 1
                    if self.rpm is not None:
                        await self.rpm.acquire(1)
                    if self.tpm is not None:
                        await self.tpm.acquire(tokens)
                    if self.cache is not None and (attempt > 1 or time.monotonic() - (claimed_at or 0) > 5):
                        self.cache.extend(key, hold_s=hold)  # still asking: keep the claim ours
                    if counts is not None:
                        counts.requests += 1
                    sent_at = time.perf_counter()
                    try:
                        response = await send(aclient, self._direct_for(aclient), model, messages, params)
                        self._latency_ms[key] = (time.perf_counter() - sent_at) * 1000.0
                    except Exception as exc:
                        error: Exception = exc
                    else:
                        self.slots.succeeded()
                        self._reached.add(id(aclient))
                        if probe is not None:
                            self._settle_model(probe, None)
                        return response
            finally:
                await self.slots.release()
            if other is not None:  # another process is asking it: wait for its answer, off the slot
                if waiting_since is None:
                    waiting_since = time.monotonic()
                found = await self._wait_for_other(key, other, waiting_since, patience=timeout)
                if found is not None:
                    return found
                continue  # the claim was dropped or went stale: claim it again
            status = status_code_of(error)
            if (
                status in REFUSED_STATUS
            ):  # the model itself is refused: never retried, its other rows not sent
                self._reached.add(id(aclient))
                message = refusal_message(model, base_url_of(aclient), error)
                if probe is not None:
                    self._settle_model(probe, message)
                else:
                    self._refused.setdefault((id(aclient), model), message)
                raise _RefusedHere(message) from error
            if probe is not None:  # any other outcome says nothing against the model: let its rows go
                self._settle_model(probe, None)
                probe = None
            if status is not None:
                self._reached.add(id(aclient))  # the server answered, if only with an error
            elif id(aclient) not in self._reached and attempt >= UNREACHED_ATTEMPTS:
                raise error  # a server that never answered this run (wrong URL, down): do not wait minutes
            if not self.retry.retry_on(error) or attempt >= self.retry.max_attempts:
                raise error
            if status_code_of(error) == 429:
                self.slots.rate_limited(generation)
                if counts is not None:
                    counts.rate_limited += 1
            if counts is not None:
                counts.retries += 1
            wait = self.retry.wait_seconds(error, attempt)
            if self.retry.on_retry is not None:
                self.retry.on_retry(error, attempt, wait)
            if self.cache is not None:
                self.cache.extend(key, hold_s=wait + hold)  # backing off is still asking
            await self.retry.async_sleep(wait)

    async def _wait_for_other(
        self, key: str, other: Claim, since: float, *, patience: float
    ) -> CachedAnswer | None:
        """Poll the cache until the answer is there (it), the claim is gone or stale (None), or patience ends."""
        assert self.cache is not None
        delay = 0.05
        while True:
            waited = time.monotonic() - since
            if waited >= patience:
                raise _WaitedTooLong(
                    f"not asked: another process (pid {other.pid} on {other.host}) has been asking this same "
                    f"request for {time.time() - other.claimed:.0f} s (claimed in the answer cache "
                    f"{self.cache.path}); this one waited {waited:.0f} s for that answer rather than pay for "
                    "it twice. Run again once the other process has finished: the answer then comes from the "
                    "cache"
                )
            await asyncio.sleep(min(delay, max(patience - waited, 0.01)))
            delay = min(delay * 1.5, 1.0)
            hit = self.cache.get(key)
            if hit is not None:
                return hit
            holder = self.cache.holder(key)
            if holder is None:
                return None
            other = holder


def request_timeout_of(aclient: Any) -> float:
    """The client's request (read) timeout in seconds; openai's default when it does not say."""
    timeout = getattr(aclient, "timeout", None)
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout)
    for name in ("read", "connect"):
        value = getattr(timeout, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return DEFAULT_REQUEST_TIMEOUT_S


def _is_openai_client(obj: Any) -> bool:
    openai = sys.modules.get("openai")  # not imported yet: obj cannot be one of its clients
    return openai is not None and isinstance(obj, (openai.OpenAI, openai.AsyncOpenAI))


class EngineJudge:
    """The engine's :class:`~finetune_wb.evaluation.evaluators.JudgeContext`: its limits, retries and cache."""

    def __init__(self, answerer: Answerer, *, temperature: float) -> None:
        self._answerer = answerer
        self._temperature = temperature

    async def complete(
        self, model: str, messages: list[dict[str, Any]], *, client: Any = None, max_tokens: int = 512
    ) -> str:
        aclient, base_url = self._answerer.client_for(client)
        params = {"max_tokens": max_tokens, "temperature": self._temperature}
        answer = await self._answerer.answer(aclient, base_url, model, messages, params)
        if answer.error is not None:
            raise EvaluationError(f"judge model {model!r} did not answer: {answer.error}")
        return answer.output or ""
