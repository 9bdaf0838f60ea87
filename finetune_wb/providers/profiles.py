"""One description per provider of OpenAI's fine-tuning API shape: what it takes, refuses and needs.

A :class:`ProviderProfile` says how a client is built from the environment, which methods and
hyperparameters the provider accepts, which :class:`~finetune_wb.schema.JobSpec` fields it refuses (and
why), whether a fine-tuned model needs a deploy step before it answers, and which model id shapes it uses.
:data:`PROFILES` holds the built-in ones (checked against the providers' public docs, 2026-12); pass your
own :class:`ProviderProfile` wherever a profile name is accepted to describe another service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier", "beta")


@dataclass(frozen=True)
class ProviderProfile:
    """What one provider accepts. ``refused`` maps a JobSpec field to why the provider refuses it."""

    name: str
    title: str
    docs: str
    env: tuple[str, ...]
    """Environment variables its client is built from."""
    client: str
    """How :meth:`client_from_env` builds the client, in words."""
    hosts: tuple[str, ...] = ()
    """Parts of a base URL's host that identify it (``openai.azure.com``)."""
    methods: tuple[str, ...] = ("supervised", "dpo", "reinforcement")
    hyperparameters: tuple[str, ...] = HYPERPARAMETERS
    extra_hyperparameters: tuple[str, ...] = ()
    """Names accepted in ``JobSpec.provider_hyperparameters`` (sent inside the method's hyperparameters)."""
    refused: Mapping[str, str] = field(default_factory=dict)
    training_types: tuple[str, ...] = ()
    """Values of ``JobSpec.training_type`` it takes (empty: the field is refused)."""
    deploy_step: bool = False
    """A fine-tuned model answers only after a deployment (Azure)."""
    id_shapes: tuple[str, ...] = ("base",)
    """Shapes of :func:`finetune_wb.model_ids.parse_model_id` its ids take."""
    jobs_end: str | None = None
    """ISO date from which it takes no new fine-tuning jobs."""
    permissive: bool = False
    """Refuse nothing before the upload (the server decides)."""
    uses_openai_retirements: bool = False
    """Whether :mod:`finetune_wb.retirement_dates` (OpenAI's shutdown table) applies to its base models."""
    notes: str = ""

    def describe(self) -> dict[str, Any]:
        """The profile as plain JSON (``finetune-wb providers --json``)."""
        out = asdict(self)
        out["refused"] = dict(self.refused)
        return out

    def client_from_env(self, env: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        """An ``openai`` client for this provider from the environment (see :attr:`client`)."""
        import openai

        env = os.environ if env is None else env
        if self.name == "azure":
            if not env.get("AZURE_OPENAI_ENDPOINT") and "azure_endpoint" not in kwargs:
                from finetune_wb.errors import ConfigError

                raise ConfigError(
                    "the azure profile needs AZURE_OPENAI_ENDPOINT (https://RESOURCE.openai.azure.com) and "
                    "AZURE_OPENAI_API_KEY (or an Entra ID token provider) and OPENAI_API_VERSION"
                )
            return openai.AzureOpenAI(**kwargs)
        if self.name == "nebius":
            kwargs.setdefault(
                "base_url", env.get("NEBIUS_BASE_URL", "https://api.tokenfactory.nebius.com/v1/")
            )
            kwargs.setdefault("api_key", env.get("NEBIUS_API_KEY"))
        if self.name == "bedrock":
            region = env.get("AWS_REGION", "us-west-2")
            kwargs.setdefault(
                "base_url", env.get("OPENAI_BASE_URL", f"https://bedrock-mantle.{region}.api.aws/v1")
            )
        return openai.OpenAI(**kwargs)


OPENAI = ProviderProfile(
    name="openai",
    title="OpenAI",
    docs="https://platform.openai.com/docs/guides/fine-tuning",
    env=("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"),
    client="openai.OpenAI() from OPENAI_API_KEY",
    hosts=("api.openai.com",),
    id_shapes=("base", "openai-ft", "openai-checkpoint"),
    jobs_end="2027-01-06",
    uses_openai_retirements=True,
    notes="Takes no new fine-tuning jobs from 2027-01-06; existing fine-tunes answer until their base model "
    "shuts down. Run the same JobSpec on Azure OpenAI to go on.",
)

AZURE = ProviderProfile(
    name="azure",
    title="Azure OpenAI",
    docs="https://learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning",
    env=("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"),
    client="openai.AzureOpenAI() from AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION "
    "(or openai.OpenAI(base_url='https://RESOURCE.openai.azure.com/openai/v1/'))",
    hosts=("openai.azure.com", "cognitiveservices.azure.com", "services.ai.azure.com"),
    refused={
        "integrations": "OpenAI's server-side W&B integration is not part of Azure's job API; finetune_wb "
        "tracks the job in W&B itself",
    },
    training_types=("standard", "globalstandard", "developerTier"),
    deploy_step=True,
    id_shapes=("base", "azure-ft", "azure-checkpoint"),
    notes="A fine-tuned model answers only once deployed (finetune-wb deploy; Developer tier for evaluation). "
    "Reinforcement fine-tuning is for o4-mini; jobs can be paused and resumed.",
)

BEDROCK = ProviderProfile(
    name="bedrock",
    title="Amazon Bedrock (OpenAI-compatible fine-tuning)",
    docs="https://docs.aws.amazon.com/bedrock/latest/userguide/rft-open-weight-access-security.html",
    env=("OPENAI_API_KEY", "OPENAI_BASE_URL", "AWS_REGION"),
    client="openai.OpenAI(base_url='https://bedrock-mantle.REGION.api.aws/v1') with a Bedrock API key "
    "as OPENAI_API_KEY",
    hosts=("bedrock-mantle", "bedrock-runtime", "bedrock"),
    methods=("reinforcement",),
    refused={
        "suffix": "Bedrock's OpenAI-compatible fine-tuning does not take a suffix",
        "integrations": "Bedrock has no server-side W&B integration",
        "beta": "Bedrock runs reinforcement fine-tuning only (beta is DPO's)",
    },
    id_shapes=("base",),
    notes="Reinforcement fine-tuning of open-weight models; the grader is a Lambda reward function.",
)

NEBIUS = ProviderProfile(
    name="nebius",
    title="Nebius Token Factory",
    docs="https://docs.tokenfactory.nebius.com/post-training/how-to-fine-tune",
    env=("NEBIUS_API_KEY", "NEBIUS_BASE_URL"),
    client="openai.OpenAI(base_url='https://api.tokenfactory.nebius.com/v1/', api_key=NEBIUS_API_KEY)",
    hosts=("nebius.com",),
    methods=("supervised",),
    hyperparameters=("n_epochs", "batch_size"),
    extra_hyperparameters=(
        "learning_rate",
        "lora",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "packing",
        "max_grad_norm",
        "weight_decay",
        "warmup_ratio",
        "context_length",
    ),
    refused={
        "learning_rate_multiplier": "Nebius takes an absolute learning_rate: put it in "
        "provider_hyperparameters={'learning_rate': ...}",
        "integrations": "Nebius has no OpenAI-style W&B integration in the job request",
    },
    id_shapes=("base",),
    notes="Open-weight models with LoRA hyperparameters (lora, lora_r, lora_alpha, lora_dropout, ...).",
)

GENERIC = ProviderProfile(
    name="generic",
    title="Any OpenAI-compatible server",
    docs="https://platform.openai.com/docs/api-reference/fine-tuning",
    env=("OPENAI_BASE_URL", "OPENAI_API_KEY"),
    client="openai.OpenAI() from OPENAI_BASE_URL and OPENAI_API_KEY",
    permissive=True,
    id_shapes=("base", "openai-ft", "openai-checkpoint", "azure-ft", "azure-checkpoint"),
    notes="Nothing is refused before the upload: the server decides (the finetune_wb emulator is one).",
)

PROFILES: dict[str, ProviderProfile] = {p.name: p for p in (OPENAI, AZURE, BEDROCK, NEBIUS, GENERIC)}
"""The built-in profiles by name."""
