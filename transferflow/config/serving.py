"""The configuration of what happens after training: the model registry, monitoring of scored
batches, and ``suggest`` (sections of :class:`~transferflow.config.settings.RunConfig`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, field_validator

from transferflow.config.section import Section as _Section


class RegistryConfig(_Section):
    """Where chosen models are registered as versions, and whether the champion may move."""

    enabled: bool = Field(default=True, description="Register the run's chosen model.")
    model_name: str | None = Field(
        default=None,
        description="Name to register under (one model per target task; versions and the "
        "champion are per name); unset = the target domain's name as a slug (lowercase letters, "
        "digits, '.', '_', '-').",
    )
    dir: Path | None = Field(
        default=None,
        description="Model registry folder; unset = $TRANSFERFLOW_REGISTRY_DIR or "
        "$TRANSFERFLOW_HOME/registry.",
    )
    auto_promote: bool = Field(
        default=True,
        description="Move the champion alias to the new version when the promotion gate passed "
        "and it is not worse than the current champion on the same target test data.",
    )

    @field_validator("model_name")
    @classmethod
    def _a_model_name(cls, value: str | None) -> str | None:
        from transferflow.storage.catalog import MODEL_NAME

        if value is not None and not MODEL_NAME.fullmatch(value):
            raise ValueError(
                "use lowercase letters, digits, '.', '_' and '-' (up to 64 characters, starting "
                "with a letter or digit), e.g. 'phone-reviews'"
            )
        return value


# What transferflow.serving.suggest implements (defined here, where the config validates the
# choice).
SuggestStrategy = Literal[
    "random",
    "margin",
    "balanced-margin",
    "softrank-margin",
    "margin-cluster",
    "badge",
    "typical-cluster",
    "committee",
]
SUGGEST_STRATEGIES: tuple[str, ...] = get_args(SuggestStrategy)


class MonitoringConfig(_Section):
    """When a scored batch no longer fits the model (``transferflow score``, the ``score`` flow):
    the limits that raise an alert and a ``transferflow.model.drift-detected`` event."""

    max_drift: float = Field(
        default=0.8,
        ge=0.0,
        le=2.0,
        description="Largest proxy A-distance between the batch's texts and the model's target "
        "training texts that is tolerated (0: alike, 2: fully apart).",
    )
    max_accuracy_drop: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="How far the estimated accuracy (calibrated confidence, no labels) may fall "
        "below the model's out-of-fold accuracy on its training target.",
    )


class SuggestConfig(_Section):
    """``transferflow suggest``: which unlabelled target texts to label next."""

    n: int = Field(default=100, ge=1, le=100_000, description="Texts to suggest.")
    strategy: SuggestStrategy = Field(
        default="margin",
        description="margin: the least sure texts (default: on MDSD it beat a random sample at "
        "both starting budgets, see docs/benchmarks.md); random: a uniform sample; "
        "balanced-margin: the least sure of each predicted class in turn; softrank-margin: a "
        "sample weighted 1/margin rank; margin-cluster: the "
        "least sure, one per group of similar ones; badge: k-means++ on "
        "gradient embeddings; typical-cluster: the most typical text of each of n groups; "
        "committee: the texts the ensemble's members disagree on most.",
    )
