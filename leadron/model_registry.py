"""The model registry: one folder per trained model under LEADRON_HOME/models/<version>/, and
production.json, the pointer to the version in production. Every reader and writer of the pointer uses this."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from ml.train import TrainedModel

POINTER = "production.json"


def model_folder(models_dir: Path, version: str) -> Path:
    return models_dir / version


def production_pointer(models_dir: Path) -> dict:
    """{"version", "promoted_at", "reason"} of the production model, or {} before the first promotion."""
    pointer = models_dir / POINTER
    return json.loads(pointer.read_text()) if pointer.exists() else {}


def production_version(models_dir: Path) -> str | None:
    return production_pointer(models_dir).get("version")


def production_card(models_dir: Path) -> tuple[dict, dict] | None:
    """(the pointer, the model card) of the production model, or None before the first promotion."""
    pointer = production_pointer(models_dir)
    card = model_folder(models_dir, str(pointer.get("version"))) / "model_card.json"
    return (pointer, json.loads(card.read_text())) if pointer and card.exists() else None


def load_production(models_dir: Path) -> TrainedModel | None:
    version = production_version(models_dir)
    return TrainedModel.load(model_folder(models_dir, version)) if version else None


def promote(models_dir: Path, version: str, reason: str) -> None:
    """Point production.json at `version`, atomically (a reader sees the old or the new pointer)."""
    pointer = models_dir / POINTER
    temporary = pointer.with_suffix(".tmp")
    promoted_at = datetime.now(UTC).replace(tzinfo=None).isoformat()
    temporary.write_text(json.dumps({"version": version, "promoted_at": promoted_at, "reason": reason}) + "\n")
    os.replace(temporary, pointer)
