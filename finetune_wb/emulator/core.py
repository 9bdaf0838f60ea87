"""The emulator's engine: state, clock, pace and faults in one object shared by the HTTP routes and Python."""

from __future__ import annotations

import os
from typing import Any

from finetune_wb.emulator import lifecycle
from finetune_wb.emulator.answerers import NearestNeighbourModel
from finetune_wb.emulator.clock import Clock, SystemClock
from finetune_wb.emulator.faults import Faults
from finetune_wb.emulator.limits import BodyLimits
from finetune_wb.emulator.retirement import ShutdownSchedule, When
from finetune_wb.emulator.state import ApiError, Store
from finetune_wb.emulator.trainers import ChatModel, NearestNeighbourTrainer, Trainer
from finetune_wb.schema import TERMINAL_JOB_STATUSES


class Core:
    """Everything the routes need. Methods take the store lock themselves."""

    def __init__(
        self,
        *,
        pace: float = 1.0,
        clock: Clock | None = None,
        persist_dir: str | os.PathLike[str] | None = None,
        limits: BodyLimits | None = None,
        shutdown_dates: dict[str, When] | None = None,
        flavour: str = "openai",
        trainer: Trainer | None = None,
    ) -> None:
        from finetune_wb.emulator.azure import check_flavour
        from finetune_wb.emulator.management import Deployments

        if pace <= 0:
            raise ValueError(f"pace must be > 0 (1.0 = default speed, smaller = faster), got {pace}")
        self.pace = float(pace)
        self.clock: Clock = clock or SystemClock()
        self.store = Store(persist_dir)
        self.faults = Faults(self.clock)
        self.limits = limits or BodyLimits()
        self.shutdowns = ShutdownSchedule(shutdown_dates)
        self.flavour = check_flavour(flavour)
        self.store.flavour = self.flavour
        self.deployments = Deployments(provision_seconds=30.0 * self.pace)
        # what trains the jobs (emulator/trainers.py): the nearest-neighbour stand-in unless told otherwise
        self.trainer: Trainer = trainer or NearestNeighbourTrainer()
        self.trainer.attach(self.store)

    def now(self) -> float:
        return self.clock.now()

    def tick_all(self) -> None:
        """Advance every unfinished job to the current clock time."""
        with self.store.lock:
            now = self.now()
            for job in list(self.store.jobs.values()):
                if job["status"] not in TERMINAL_JOB_STATUSES:
                    self.trainer.tick(self.store, job, now)

    def reset(self) -> None:
        with self.store.lock:
            self.store.reset()
            self.faults.reset()
            self.shutdowns.reset()
            self.deployments.reset()
            self.deployments.provision_seconds = 30.0 * self.pace
            self.__dict__.pop("_batch_controls", None)  # batch fault rules (emulator/batches.py)

    def fail_job(self, job_id: str, *, code: str, message: str, param: str | None = None) -> dict[str, Any]:
        with self.store.lock:
            job = self.store.get_job(job_id)
            lifecycle.fail(self.store, job, self.now(), code=code, message=message, param=param)
            return job

    def chat_model(self, model: str) -> ChatModel | None:
        """The nearest-neighbour model behind a fine-tuned model id, None for a base model, 404 otherwise."""
        from finetune_wb.emulator.state import BASE_MODELS

        served = self.trainer.chat_model(self.store, model)
        if served is not None:
            return served
        if model in BASE_MODELS:
            return None
        if self.flavour == "azure":  # on Azure a fine-tune answers through a deployment that succeeded
            from finetune_wb.emulator.azure import deployment_not_found

            deployed = self.deployments.model_of(model, self.now())
            if deployed is None:
                raise deployment_not_found(model)
            if deployed in BASE_MODELS:
                return None
            model = deployed
        with self.store.lock:
            job = self.store.fine_tuned_models().get(model)
            if job is None:
                raise ApiError(
                    404,
                    f"The model `{model}` does not exist or you do not have access to it.",
                    param="model",
                    code="model_not_found",
                )
            cached = self.store.model_cache.get(job["id"])
            if cached is None:
                import json

                pairs = json.loads(self.store.read_blob(f"model-{job['id']}.json"))
                cached = NearestNeighbourModel([(p, a) for p, a in pairs])
                self.store.model_cache[job["id"]] = cached
            return cached  # type: ignore[no-any-return]

    def close(self) -> None:
        self.trainer.close()
        self.store.close()
