"""Batch mode: fill the answer cache through the Batch API, then let the engine run as usual.

:func:`run_batches` sends every (model, row) missing from the answer cache and not already in a live batch
(shards written to disk, checked, uploaded, batches created and recorded at once in the
:class:`~finetune_wb.evaluation.batch.ledger.BatchLedger`), waits for them with back-off (unless told not
to), and reads their output and error files into the cache. The engine then finds those answers cached;
what :attr:`BatchOutcome.blocked` names (rows in a batch still running, or whose batch line failed) it does
not ask synchronously, unless ``fallback="sync"`` for the failed ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_wb.errors import BatchInputError, EvaluationError
from finetune_wb.evaluation.batch import remote
from finetune_wb.evaluation.batch.collect import collect_shard
from finetune_wb.evaluation.batch.ledger import BatchLedger
from finetune_wb.evaluation.batch.settings import BatchOptions, BatchSummary
from finetune_wb.evaluation.batch.shards import AZURE_CHAT_URL, CHAT_URL, RowRequest, ShardFile, write_shards
from finetune_wb.evaluation.cache import AnswerCache, cache_key
from finetune_wb.evaluation.targets import ResolvedModel

logger = logging.getLogger("finetune_wb.evaluation")

IN_BATCH_PREFIX = "in batch "
"""How the error of a row begins while its batch is still running (not a failure: run again to collect)."""

TERMINAL = ("completed", "failed", "expired", "cancelled")
LOOKUP_CHUNK = 500
"""Keys looked up in the cache and the ledger per query."""


@dataclass
class BatchOutcome:
    """What batch mode did: rows the engine must not ask synchronously (with their error), the batches."""

    blocked: dict[tuple[int, int], str] = field(default_factory=dict)
    summaries: list[BatchSummary] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def run_batches(
    *,
    resolved: Sequence[ResolvedModel],
    prompts: Sequence[list[dict[str, Any]]],
    params: dict[str, Any],
    cache: AnswerCache | None,
    settings: BatchOptions,
    retry: Any,
    progress: bool,
    name: str,
    prices: dict[str, tuple[float, float]] | None = None,
    row_params: Sequence[dict[str, Any]] | None = None,
) -> BatchOutcome:
    """Fill ``cache`` through the Batch API. ``row_params[i]`` (when given) are row ``i``'s request parameters
    (``params`` plus the row's tools / ``tool_choice`` / ``response_format``), exactly as the synchronous engine
    sends them, so both modes share cache keys and bodies."""
    if cache is None:
        raise EvaluationError(
            "batch mode needs the answer cache (its batches are recorded there, and their answers land "
            "there): evaluate with cache=True or a cache path (drop --no-cache)"
        )
    ledger = BatchLedger(cache.path)
    work = cache.path.with_name(cache.path.name + ".batches")
    try:
        per_row = list(row_params) if row_params is not None else [params] * len(prompts)
        run = _Run(resolved, prompts, params, cache, ledger, settings, retry, work, name, prices, per_row)
        await run.submit()
        await run.wait(progress=progress)
        await run.collect()
        return run.outcome()
    finally:
        ledger.close()


class _Run:
    def __init__(
        self,
        resolved: Sequence[ResolvedModel],
        prompts: Sequence[list[dict[str, Any]]],
        params: dict[str, Any],
        cache: AnswerCache,
        ledger: BatchLedger,
        settings: BatchOptions,
        retry: Any,
        work: Path,
        name: str,
        prices: dict[str, tuple[float, float]] | None,
        row_params: Sequence[dict[str, Any]],
    ) -> None:
        self.resolved, self.prompts, self.params, self.row_params = resolved, prompts, params, row_params
        self.cache, self.ledger, self.settings, self.retry = cache, ledger, settings, retry
        self.work, self.name, self.prices = work, name, prices
        self.keys = [
            [cache_key(r.base_url, r.target.name, p, rp) for p, rp in zip(prompts, row_params, strict=True)]
            for r in resolved
        ]
        self.client_of = {(r.base_url, r.target.name): r.aclient for r in resolved}
        self.touched: dict[str, None] = {}  # shard ids this run submitted, waited on or collected
        self.collected_now: dict[str, dict[str, Any]] = {}

    # --- submit --------------------------------------------------------------------------------------
    async def submit(self) -> None:
        from finetune_wb._paths import process_lock

        self.work.mkdir(parents=True, exist_ok=True)
        with process_lock(
            self.work / "submit.lock", timeout=None, what=f"batch submission for {self.cache.path}"
        ):
            await self._adopt_orphans()
            wanted = self._models_to_send()
            if wanted:
                await self._check_models(wanted)
                await self._send([(m, r) for m, r in enumerate(self.resolved) if r.target.name in wanted])

    def _chunks(self, m: int) -> Iterator[tuple[int, list[str], set[str], dict[str, Any]]]:
        """The keys of model ``m`` in chunks, each with its cached keys and ledger rows (see
        :meth:`BatchLedger.lookup`): the rows are never all in memory at once."""
        keys = self.keys[m]
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start : start + LOOKUP_CHUNK]
            cached, rows = self.ledger.lookup(chunk)
            yield start, chunk, cached, rows

    def _models_to_send(self) -> set[str]:
        """Models with rows neither cached nor in a live batch (noting the live batches of this run's rows)."""
        wanted: set[str] = set()
        for m, r in enumerate(self.resolved):
            for _start, chunk, cached, rows in self._chunks(m):
                for key in chunk:
                    sid = (rows.get(key) or (None, None))[0]
                    if sid is not None:
                        self.touched[sid] = None
                    elif key not in cached:
                        wanted.add(r.target.name)
        return wanted

    def _pending(self, m: int, seen: set[str]) -> Iterator[RowRequest]:
        """The requests of model ``m`` to send: not cached, in no live batch, each once (streamed)."""
        r = self.resolved[m]
        for start, chunk, cached, rows in self._chunks(m):
            for offset, key in enumerate(chunk):
                if key in seen or key in cached or (rows.get(key) or (None, None))[0] is not None:
                    continue
                seen.add(key)
                i = start + offset
                yield RowRequest(key, r.target.name, self.prompts[i], i, r.label, self.row_params[i])

    async def _adopt_orphans(self) -> None:
        """Shards recorded but without a batch id (a crash between steps): find or finish their batch."""
        for shard in self.ledger.live_shards():
            if shard["batch_id"] is not None:
                continue
            aclient = self.client_of.get((shard["base_url"], shard["model"]))
            if aclient is None:
                continue  # another evaluation's shard: that one finishes it
            if shard["file_id"] is None:
                self.ledger.forget_shard(shard["shard"])  # never uploaded: its rows are simply sent again
                continue
            batch = await self.retry.acall(remote.find_by_shard, aclient, shard["shard"], shard["created"])
            if batch is None:
                batch = await self._create(
                    aclient, shard["shard"], shard["file_id"], shard["model"], shard["created"]
                )
            self.ledger.set_batch(shard["shard"], batch)
            logger.info("batch %s of shard %s recorded after a restart", batch["id"], shard["shard"])

    async def _check_models(self, wanted: set[str]) -> None:
        """Each model with rows to send looked up once (not on Azure: deployment names are not model ids)."""
        problems = []
        for r in self.resolved:
            if r.target.name not in wanted or remote.is_azure(r.aclient):
                continue
            problem = await remote.check_model(r.aclient, r.target.name, r.base_url)
            if problem is not None and problem not in problems:
                problems.append(problem)
        if problems:
            raise BatchInputError("; ".join(problems))

    def _url(self, aclient: Any) -> str:
        return AZURE_CHAT_URL if remote.is_azure(aclient) else CHAT_URL

    async def _send(self, models: list[tuple[int, ResolvedModel]]) -> None:
        folder = self.work / f"send-{uuid.uuid4().hex[:12]}"
        planned: list[tuple[ResolvedModel, list[ShardFile]]] = []
        seen: set[str] = set()
        try:
            for m, r in models:  # every shard of every model is written (each line checked) first
                written = write_shards(
                    self._pending(m, seen),
                    folder,
                    self.params,
                    max_requests=self.settings.max_requests,
                    max_bytes=self.settings.max_bytes,
                    url=self._url(r.aclient),
                    prefix=f"m{m}",
                )
                planned.append((r, list(written)))
            max_tokens = int(self.params.get("max_tokens") or 0)
            for r, shards in planned:
                for shard in shards:
                    await self._submit(r, shard, max_tokens)
        finally:
            for _r, shards in planned:
                for shard in shards:
                    shard.path.unlink(missing_ok=True)
            with suppress(OSError):
                for leftover in folder.glob("*.jsonl"):
                    leftover.unlink()
                folder.rmdir()

    async def _submit(self, r: ResolvedModel, shard: ShardFile, max_tokens: int) -> None:
        """Record, upload and create one shard's batch (each step committed before the next)."""
        sid = "shard_" + uuid.uuid4().hex[:20]
        self.ledger.add_shard(
            sid,
            base_url=r.base_url,
            model=r.target.name,
            keys=shard.keys,
            est_prompt_tokens=shard.est_prompt_tokens,
            est_completion_tokens=max_tokens * len(shard.keys),
        )
        file_id = await remote.upload(r.aclient, shard.path, self.retry)
        self.ledger.set_file(sid, file_id)
        batch = await self._create(r.aclient, sid, file_id, r.target.name, time.time())
        self.ledger.set_batch(sid, batch)
        self.touched[sid] = None
        shard.path.unlink(missing_ok=True)
        logger.info(
            "batch %s: %d requests of %s (%d bytes, file %s)",
            batch["id"],
            len(shard.keys),
            r.target.name,
            shard.n_bytes,
            file_id,
        )

    async def _create(self, aclient: Any, sid: str, file_id: str, model: str, since: float) -> dict[str, Any]:
        metadata = {
            **dict(list(self.settings.metadata.items())[:12]),
            "finetune_wb": "evaluation",
            "finetune_wb_eval": self.name[:512],
            "finetune_wb_model": model[:512],
            remote.SHARD_KEY: sid,
        }
        endpoint = self._url(aclient)
        return await remote.create_once(
            aclient, file_id=file_id, endpoint=endpoint, metadata=metadata, since=since, retry=self.retry
        )

    # --- wait ----------------------------------------------------------------------------------------
    def _ours(self) -> list[dict[str, Any]]:
        return [s for s in self.ledger.live_shards() if s["shard"] in self.touched and s["batch_id"]]

    async def wait(self, *, progress: bool) -> None:
        from finetune_wb._progress import progress_bar

        live = self._ours()
        if not live:
            return
        started = time.monotonic()
        delay = self.settings.poll_interval
        total = sum(s["n_requests"] for s in live)
        bar = progress_bar(total, desc="batch", disable=not progress, unit="req")
        last: dict[str, str] = {}
        try:
            while True:
                done = 0
                running = 0
                for shard in live:
                    if shard["status"] not in TERMINAL:
                        aclient = self.client_of[(shard["base_url"], shard["model"])]
                        batch = await remote.retrieve(aclient, shard["batch_id"], self.retry)
                        self.ledger.set_batch(shard["shard"], batch)
                        shard["status"], shard["info"] = (
                            batch["status"],
                            self.ledger.shard(shard["shard"])["info"],
                        )
                    status = shard["status"]
                    if last.get(shard["shard"]) != status:
                        counts = shard["info"].get("request_counts") or {}
                        logger.info(
                            "batch %s (%s): %s, %s/%s done, %s failed",
                            shard["batch_id"],
                            shard["model"],
                            status,
                            counts.get("completed", 0),
                            counts.get("total", shard["n_requests"]),
                            counts.get("failed", 0),
                        )
                        last[shard["shard"]] = status
                    counts = shard["info"].get("request_counts") or {}
                    done += (
                        shard["n_requests"]
                        if status in TERMINAL
                        else int(counts.get("completed") or 0) + int(counts.get("failed") or 0)
                    )
                    running += status not in TERMINAL
                bar.update(max(0, min(done, total) - bar.n))  # update: line-mode bars keep their interval
                if not running or not self.settings.wait:
                    return
                if self.settings.timeout is not None and time.monotonic() - started >= self.settings.timeout:
                    logger.warning(
                        "stopped waiting after %.0f s with %d batch(es) still running; run the same evaluation "
                        "again to collect them",
                        self.settings.timeout,
                        running,
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, self.settings.max_poll_interval)
        finally:
            bar.close()

    # --- collect -------------------------------------------------------------------------------------
    async def collect(self) -> None:
        for shard in self._ours():
            if shard["status"] in TERMINAL:
                await self._collect(shard)

    async def _collect(self, shard: dict[str, Any]) -> None:
        aclient = self.client_of[(shard["base_url"], shard["model"])]
        self.collected_now[shard["shard"]] = await collect_shard(
            shard,
            aclient=aclient,
            cache=self.cache,
            ledger=self.ledger,
            work=self.work,
            retry=self.retry,
            keys=self.keys,
        )

    # --- outcome -------------------------------------------------------------------------------------
    def outcome(self) -> BatchOutcome:
        out = BatchOutcome()
        live = {s["shard"]: s for s in self.ledger.live_shards()}
        waiting: dict[str, str] = {}
        for m in range(len(self.resolved)):
            for start, chunk, cached, rows in self._chunks(m):
                for offset, key in enumerate(chunk):
                    row = rows.get(key)
                    if row is None or key in cached:
                        continue  # answered (through a batch, or another way meanwhile), or never sent
                    sid, error = row
                    if sid is not None and sid in live:
                        if sid not in waiting:  # one message per batch, shared by its rows
                            batch = live[sid]
                            waiting[sid] = (
                                f"{IN_BATCH_PREFIX}{batch['batch_id'] or '(not created)'} ({batch['status']}); "
                                "run the same evaluation again to collect its answers"
                            )
                        out.blocked[(m, start + offset)] = waiting[sid]
                    elif self.settings.fallback != "sync":
                        out.blocked[(m, start + offset)] = (
                            error or "unanswered in its batch; run again to ask it in a new batch"
                        )
        for sid in self.touched:
            shard = self.collected_now.get(sid) or live.get(sid)
            if shard is not None:
                out.summaries.append(self._summary(shard))
        running = sum(1 for s in out.summaries if s.status not in TERMINAL)
        if running:
            out.warnings.append(
                f"{running} batch(es) still running; run the same evaluation again to collect their answers"
            )
        for s in out.summaries:
            if s.skipped_lines:
                out.warnings.append(
                    f"batch {s.id}: {len(s.skipped_lines)} result line(s) could not be read and were skipped "
                    f"(first: {s.skipped_lines[0]}); their rows are asked again on the next run"
                )
            if s.status == "failed":
                first = s.errors[0]["message"] if s.errors else "no reason given"
                hint = ""
                if any(remote.is_azure(c) for (_u, m), c in self.client_of.items() if m == s.model):
                    hint = (
                        f" (on Azure OpenAI a batch needs a Global-Batch deployment: {s.model!r} must be the name "
                        "of one; run with fallback='sync' / --fallback sync to ask these rows synchronously)"
                    )
                out.warnings.append(f"batch {s.id} ({s.model}) failed validation: {first}{hint}")
        return out

    def _summary(self, shard: dict[str, Any]) -> BatchSummary:
        from finetune_wb.evaluation.pricing import batch_cost, estimate_cost

        info = shard["info"]
        model = shard["model"]
        discount = self.settings.discount
        est = estimate_cost(model, shard["est_prompt_tokens"], shard["est_completion_tokens"], self.prices)
        actual = None
        if shard["collected"]:
            actual = estimate_cost(
                model,
                int(info.get("prompt_tokens") or 0),
                int(info.get("completion_tokens") or 0),
                self.prices,
            )
        errors = list(info.get("errors_detail") or (info.get("errors") or {}).get("data") or [])
        return BatchSummary(
            id=shard["batch_id"],
            status=shard["status"],
            request_counts=dict(info.get("request_counts") or {}),
            model=model,
            shard=shard["shard"],
            input_file_id=shard["file_id"],
            output_file_id=info.get("output_file_id"),
            error_file_id=info.get("error_file_id"),
            n_requests=shard["n_requests"],
            collected=bool(shard["collected"]),
            n_collected=int(info.get("n_collected") or 0),
            n_errored=int(info.get("n_errored") or 0),
            skipped_lines=list(info.get("skipped") or []),
            errors=errors,
            estimated_cost_usd=batch_cost(est, discount),
            estimated_sync_cost_usd=est,
            cost_usd=batch_cost(actual, discount),
            sync_cost_usd=actual,
        )
