"""Provider profiles: what each OpenAI-compatible fine-tuning service accepts, checked before anything is paid.

:mod:`.profiles` (the descriptions: openai, azure, bedrock, nebius, generic), :mod:`.checks` (pick a profile
from a name or a client, check a JobSpec against it), :mod:`.preflight_checks` (OpenAI's end of new jobs and base
model shutdown dates, before an upload), :mod:`.hosting` (Azure's hourly hosting fee of a deployment).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_wb._lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "PROFILES": ".profiles",
    "PreflightError": ".preflight_checks",
    "ProviderProfile": ".profiles",
    "ProviderRefusal": ".checks",
    "check_job_spec": ".checks",
    "get_profile": ".checks",
    "hosting_usd_per_hour": ".hosting",
    "preflight": ".preflight_checks",
    "profile_for": ".checks",
}

__all__ = sorted([*_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from finetune_wb.providers.checks import (
        ProviderRefusal as ProviderRefusal,
        check_job_spec as check_job_spec,
        get_profile as get_profile,
        profile_for as profile_for,
    )
    from finetune_wb.providers.hosting import hosting_usd_per_hour as hosting_usd_per_hour
    from finetune_wb.providers.preflight_checks import (
        PreflightError as PreflightError,
        preflight as preflight,
    )
    from finetune_wb.providers.profiles import PROFILES as PROFILES, ProviderProfile as ProviderProfile
