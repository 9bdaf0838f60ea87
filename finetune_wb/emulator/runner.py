"""``Emulator`` (the Python handle on a running server) and ``run_emulator`` (the context manager)."""

from __future__ import annotations

import errno
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from finetune_wb.emulator.clock import Clock
from finetune_wb.emulator.faults import FaultRule, JournalEntry, LatencyRule, reason_of
from finetune_wb.emulator.limits import BodyLimits
from finetune_wb.errors import EmulatorError

if TYPE_CHECKING:
    import openai

    from finetune_wb.emulator.core import Core
    from finetune_wb.emulator.server import ServerThread
    from finetune_wb.emulator.trainers import Trainer


class Emulator:
    """A local OpenAI-compatible fine-tuning server running in a background thread.

    Start it with :func:`run_emulator` (or ``Emulator(...).start()`` / ``.stop()``, or ``with Emulator():``).
    ``pace`` scales every duration of a job's lifecycle (1.0: a 100-example, 3-epoch job takes ~8.5 s;
    0.01: ~0.1 s). ``clock`` replaces the wall clock, e.g. with a :class:`ManualClock`. ``persist_dir`` keeps
    files and jobs on disk so a restarted emulator still has them. ``limits`` caps request bodies (a
    :class:`~finetune_wb.emulator.limits.BodyLimits`; the default is what OpenAI documents): a bigger body
    answers 413 before it is read. ``shutdown_dates`` maps model ids to the time they shut down (see
    :meth:`retire`); a reset keeps these.
    ``flavour="azure"`` serves Azure OpenAI instead (see
    :mod:`finetune_wb.emulator.azure`): Azure's routes and id shapes, and the management routes of model
    deployments on the same port (:attr:`management_url`).
    """

    def __init__(
        self,
        *,
        pace: float = 1.0,
        clock: Clock | None = None,
        persist_dir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: BodyLimits | None = None,
        shutdown_dates: dict[str, Any] | None = None,
        flavour: str = "openai",
        trainer: Trainer | None = None,
    ) -> None:
        from finetune_wb.emulator.core import Core

        if not 0 <= port <= 65535:
            raise EmulatorError(f"port must be between 0 and 65535 (0 picks a free port), got {port}")
        try:
            self.core: Core = Core(
                pace=pace,
                clock=clock,
                persist_dir=persist_dir,
                limits=limits,
                shutdown_dates=shutdown_dates,
                flavour=flavour,
                trainer=trainer,
            )
        except ValueError as exc:
            raise EmulatorError(str(exc)) from exc
        except OSError as exc:
            raise EmulatorError(
                f"cannot keep the emulator's state in persist_dir {os.fspath(persist_dir or '')!r}: {exc}. "
                "Pass a writable directory (it is created if missing)."
            ) from exc
        self._host, self._port = host, port
        self._server: ServerThread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        try:
            from finetune_wb.emulator.server import ServerThread

            if importlib.util.find_spec("python_multipart") is None:  # starlette needs it for uploads
                raise ImportError("No module named 'python_multipart'")
        except ImportError as exc:
            raise EmulatorError(
                f"the emulator needs starlette, uvicorn and python-multipart ({exc}); install them with "
                "pip install 'finetune-wb[emulator]'"
            ) from exc
        try:
            server = ServerThread(self.core, host=self._host, port=self._port)
            server.start()
        except (OSError, RuntimeError) as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
                hint = "the port is in use: pick another port (port=0, or --port 0, picks a free one)"
            else:
                hint = "check the host and port (use a local address such as 127.0.0.1; port=0 picks a free port)"
            raise EmulatorError(
                f"could not start the emulator on {self._host}:{self._port}: {exc}; {hint}"
            ) from exc
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.core.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses and clients ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise EmulatorError("the emulator is not running; call start() or use run_emulator()")
        return self._server.port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:8787`` (admin routes live under ``/_emulator/``)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to an OpenAI client: ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    @property
    def pace(self) -> float:
        return self.core.pace

    @pace.setter
    def pace(self, value: float) -> None:
        """Change the pace for jobs created from now on."""
        if value <= 0:
            raise EmulatorError(f"pace must be > 0, got {value}")
        self.core.pace = float(value)
        self.core.deployments.provision_seconds = 30.0 * float(value)

    @property
    def clock(self) -> Clock:
        return self.core.clock

    def client(self, api_key: str = "sk-test", **kwargs: Any) -> openai.OpenAI:
        """An ``openai.OpenAI`` pointed at this emulator (extra keyword arguments go to the client)."""
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key=api_key, **kwargs)

    def async_client(self, api_key: str = "sk-test", **kwargs: Any) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` pointed at this emulator."""
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, **kwargs)

    # --- the Azure flavour -------------------------------------------------------------------------------
    @property
    def flavour(self) -> str:
        return self.core.flavour

    @property
    def azure_endpoint(self) -> str:
        """What to pass as ``azure_endpoint`` (or ``AZURE_OPENAI_ENDPOINT``): the root URL."""
        return self.url

    @property
    def management_url(self) -> str:
        """Azure flavour: the ARM base URL of the deployments routes (``AZURE_MANAGEMENT_URL``)."""
        return self.url

    def azure_client(
        self, api_key: str = "azure-test", api_version: str = "2024-10-21", **kwargs: Any
    ) -> openai.AzureOpenAI:
        """An ``openai.AzureOpenAI`` on the classic ``/openai/...?api-version=`` routes."""
        import openai

        return openai.AzureOpenAI(azure_endpoint=self.url, api_key=api_key, api_version=api_version, **kwargs)

    def v1_client(self, api_key: str = "azure-test", **kwargs: Any) -> openai.OpenAI:
        """A plain ``openai.OpenAI`` on Azure's v1 routes (``base_url=<endpoint>/openai/v1/``)."""
        import openai

        return openai.OpenAI(base_url=self.url + "/openai/v1/", api_key=api_key, **kwargs)

    def deployment(self, name: str) -> dict[str, Any] | None:
        """Azure flavour: the deployment as ARM would return it now (None when it does not exist)."""
        return self.core.deployments.get(name, self.core.now())

    def fail_next_deployment(
        self, message: str = "The deployment failed (injected by the emulator)."
    ) -> None:
        """Azure flavour: the next deployment created ends Failed with ``message``."""
        self.core.deployments.fail_next.append(message)

    def set_deployment_quota(self, capacity: int) -> None:
        """Azure flavour: how much capacity each SKU may deploy in all (beyond: 400 InsufficientQuota)."""
        self.core.deployments.quota = int(capacity)

    # --- test controls -----------------------------------------------------------------------------------
    @property
    def journal(self) -> list[JournalEntry]:
        """Every /v1 request answered so far (method, path, status, time, query, body_size, fault)."""
        return self.core.faults.journal()

    def inject_fault(
        self,
        path: str = "/v1/fine_tuning/jobs",
        method: str | None = "POST",
        status: int = 500,
        count: int | None = 1,
        retry_after_ms: int | None = None,
        after_handler: bool = False,
        probability: float | None = None,
        *,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Make the next ``count`` requests matching ``method`` and ``path`` (a glob) fail with ``status``.

        ``count=None`` fails every matching request until :meth:`reset`. ``after_handler=True`` does the
        work first and then answers with the error (the client retries work that did happen: the way a
        timed-out POST creates a duplicate). ``probability`` makes each matching request fail at random.
        """
        try:
            self.core.faults.add_fault(
                FaultRule(
                    path=path,
                    method=method,
                    status=status,
                    count=count,
                    retry_after_ms=retry_after_ms,
                    after_handler=after_handler,
                    probability=probability,
                    code=code,
                    message=message,
                )
            )
        except ValueError as exc:
            raise EmulatorError(f"inject_fault: {reason_of(exc)}") from exc

    def inject_latency(self, seconds: float, path: str | None = None, method: str | None = None) -> None:
        """Delay every matching request by ``seconds`` (real time) until :meth:`reset`."""
        try:
            self.core.faults.add_latency(LatencyRule(seconds=seconds, path=path, method=method))
        except ValueError as exc:
            raise EmulatorError(f"inject_latency: {reason_of(exc)}") from exc

    def rate_limit(self, rpm: int | None = None, path: str = "/v1/chat/completions") -> None:
        """Allow ``rpm`` requests per minute (by the emulator's clock) on ``path``; beyond: 429 with
        ``retry-after-ms``. ``rpm=None`` removes the limit."""
        try:
            self.core.faults.set_rate_limit(path, rpm)
        except ValueError as exc:
            raise EmulatorError(str(exc)) from exc

    def fail_job(
        self,
        job_id: str,
        code: str = "internal_error",
        message: str = "The job failed.",
        param: str | None = None,
    ) -> None:
        """Make an unfinished job fail now with ``error={code, message, param}``."""
        from finetune_wb.emulator.state import ApiError

        try:
            self.core.fail_job(job_id, code=code, message=message, param=param)
        except ApiError as exc:
            raise EmulatorError(exc.message) from exc

    def batch_fault(
        self,
        *,
        fail_validation: str | None = None,
        expire_after_fraction: float | None = None,
        error_every: int | None = None,
        count: int | None = 1,
    ) -> None:
        """Make the next ``count`` batches created fail validation (with this message), expire after
        answering ``expire_after_fraction`` of their lines, or answer every ``error_every``-th line with a
        500 (see :mod:`finetune_wb.emulator.batches`). ``count=None``: every later batch, until reset."""
        from finetune_wb.emulator.batches import BatchFaults, check_fault, controls
        from finetune_wb.emulator.state import ApiError

        rule = BatchFaults(fail_validation, expire_after_fraction, error_every, count)
        try:
            check_fault(rule)
        except ApiError as exc:
            raise EmulatorError(f"batch_fault: {exc.message}") from exc
        controls(self.core).pending.append(rule)

    @property
    def batch_lines_answered(self) -> int:
        """How many batch request lines this emulator answered (what the Batch API would bill)."""
        from finetune_wb.emulator.batches import controls

        return controls(self.core).answered

    def advance(self, seconds: float) -> None:
        """Move a :class:`ManualClock` forward (an error on the wall clock)."""
        from finetune_wb.emulator.clock import ManualClock

        if not isinstance(self.core.clock, ManualClock):
            raise EmulatorError("advance() needs an emulator started with clock=ManualClock()")
        self.core.clock.advance(seconds)

    def retire(self, model: str, at: Any = None) -> None:
        """Shut ``model`` (and its fine-tunes, for a base model) down at ``at`` (unix seconds, an ISO date or
        datetime, a ``date``/``datetime``; None: now, by the emulator's clock). See
        :mod:`finetune_wb.emulator.retirement`."""
        try:
            self.core.shutdowns.set(model, self.core.now() if at is None else at)
        except ValueError as exc:
            raise EmulatorError(f"retire: {exc}") from exc

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as the API would return it now (a copy)."""
        from finetune_wb.emulator.state import ApiError

        self.core.tick_all()
        try:
            return dict(self.core.store.get_job(job_id))
        except ApiError as exc:
            raise EmulatorError(exc.message) from exc

    def reset(self) -> None:
        """Forget all files, uploads, jobs, models, faults, latencies, rate limits and the journal."""
        self.core.reset()


@contextmanager
def run_emulator(
    pace: float = 1.0,
    clock: Clock | None = None,
    persist_dir: str | os.PathLike[str] | None = None,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    limits: BodyLimits | None = None,
    shutdown_dates: dict[str, Any] | None = None,
    flavour: str = "openai",
) -> Iterator[Emulator]:
    """Run an emulator for the duration of a ``with`` block and stop it afterwards (``limits``: the
    request body caps, see :class:`Emulator`; ``flavour="azure"``: Azure OpenAI's routes and deployments)."""
    emu = Emulator(
        pace=pace,
        clock=clock,
        persist_dir=persist_dir,
        host=host,
        port=port,
        limits=limits,
        shutdown_dates=shutdown_dates,
        flavour=flavour,
    )
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()
