"""Pick a provider's profile (by name, or from a client's base URL) and check a JobSpec against it.

:func:`check_job_spec` runs before anything is uploaded or paid: a field the provider refuses raises
:class:`ProviderRefusal`, which names the field (``.field``), the provider and what to do instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from finetune_wb.errors import ConfigError
from finetune_wb.providers.profiles import PROFILES, ProviderProfile
from finetune_wb.schema import JobSpec

_FIELD_SET = {
    "suffix": lambda s: s.suffix is not None,
    "integrations": lambda s: bool(s.integrations),
    "seed": lambda s: s.seed is not None,
    "metadata": lambda s: bool(s.metadata),
    "grader": lambda s: s.grader is not None,
}


class ProviderRefusal(ConfigError):
    """The provider would refuse this job; ``.field`` is the JobSpec field, ``.provider`` the profile name."""

    def __init__(self, message: str, *, field: str, provider: str) -> None:
        super().__init__(message)
        self.field = field
        self.provider = provider


def get_profile(provider: str | ProviderProfile) -> ProviderProfile:
    """The profile named ``provider`` (or ``provider`` itself); a :class:`ConfigError` listing the names."""
    if isinstance(provider, ProviderProfile):
        return provider
    key = provider.strip().lower()
    if key not in PROFILES:
        raise ConfigError(f"unknown provider {provider!r}: use one of {', '.join(PROFILES)}")
    return PROFILES[key]


def profile_for_url(base_url: str | None) -> ProviderProfile:
    """The profile a base URL belongs to: no URL is OpenAI's; a path ending ``/openai/v1`` is Azure's v1
    layout; otherwise the host decides, and an unknown host is ``generic``."""
    if not base_url:
        return PROFILES["openai"]
    parsed = urlparse(base_url)
    host = (parsed.hostname or "").lower()
    if parsed.path.rstrip("/").endswith("/openai/v1"):  # Azure's v1 layout, whoever serves it
        return PROFILES["azure"]
    for profile in PROFILES.values():
        if any(part in host for part in profile.hosts):
            return profile
    return PROFILES["generic"]


def profile_for(client: Any = None, *, provider: str | ProviderProfile | None = None) -> ProviderProfile:
    """``provider`` when given, else the profile of ``client`` (an ``AzureOpenAI`` is Azure; otherwise its
    base URL decides; no client: the environment's ``OPENAI_BASE_URL`` / ``AZURE_OPENAI_ENDPOINT``)."""
    if provider is not None:
        return get_profile(provider)
    if client is None:
        import os

        if os.environ.get("AZURE_OPENAI_ENDPOINT") and not os.environ.get("OPENAI_BASE_URL"):
            return PROFILES["azure"]
        return profile_for_url(os.environ.get("OPENAI_BASE_URL"))
    openai_mod = __import__("sys").modules.get("openai")
    if openai_mod is not None and isinstance(client, (openai_mod.AzureOpenAI, openai_mod.AsyncAzureOpenAI)):
        return PROFILES["azure"]
    return profile_for_url(str(getattr(client, "base_url", "") or ""))


def _refuse(profile: ProviderProfile, field: str, why: str) -> ProviderRefusal:
    return ProviderRefusal(
        f"{profile.title} ({profile.name}) refuses this job's {field}: {why}. Nothing was uploaded; change the "
        f"job, or pick the provider that takes it (finetune-wb providers lists them)",
        field=field,
        provider=profile.name,
    )


def check_job_spec(spec: JobSpec, profile: str | ProviderProfile) -> None:
    """Raise :class:`ProviderRefusal` for the first field of ``spec`` that ``profile`` refuses."""
    profile = get_profile(profile)
    if profile.permissive:
        return
    if spec.method not in profile.methods:
        raise _refuse(
            profile, "method", f"it runs {', '.join(profile.methods)} fine-tuning, not {spec.method!r}"
        )
    for field, why in profile.refused.items():
        is_set = _FIELD_SET.get(field)
        if is_set is not None and is_set(spec):
            raise _refuse(profile, field, why)
        if (
            field in ("n_epochs", "batch_size", "learning_rate_multiplier", "beta")
            and getattr(spec, field) != "auto"
        ):
            raise _refuse(profile, field, why)
    for key in spec.hyperparameters():
        if (
            key in ("n_epochs", "batch_size", "learning_rate_multiplier", "beta")
            and key not in profile.hyperparameters
        ):
            raise _refuse(profile, key, f"it takes only {', '.join(profile.hyperparameters)}")
    for key in spec.provider_hyperparameters:
        if key not in profile.extra_hyperparameters:
            allowed = ", ".join(profile.extra_hyperparameters) or "none"
            raise _refuse(
                profile, f"provider_hyperparameters.{key}", f"its extra hyperparameters are: {allowed}"
            )
    if spec.training_type is not None:
        if not profile.training_types:
            raise _refuse(
                profile,
                "training_type",
                "trainingType is Azure OpenAI's (standard, globalstandard, developerTier)",
            )
        if spec.training_type not in profile.training_types:
            raise _refuse(profile, "training_type", f"use one of {', '.join(profile.training_types)}")
    if profile.name == "azure" and spec.method == "reinforcement" and not spec.model.startswith("o4-mini"):
        raise _refuse(profile, "method", "Azure OpenAI runs reinforcement fine-tuning for o4-mini only")
