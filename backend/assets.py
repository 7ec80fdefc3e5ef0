"""Model weights on disk (safetensors: never a pickle), and where the shipped assets live."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def save_state(model: torch.nn.Module, path: Path) -> None:
    save_model(model, str(path))  # handles the policy's tied embedding / LM-head weights


def load_state(model: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights (never a pickle) into a model built from its config."""
    device = next(model.parameters()).device
    load_model(model, str(path), strict=True, device=str(device))
