"""A stopped run's state in one folder, so that the same config resumes where it stopped.

PPO (backend/ppo.py) is the one stage too long to redo: a worker stopped by SIGTERM re-queues
its run (db/worker.py), and the next worker to take it would otherwise start PPO from step 0.
When a PPO run stops at a step boundary (SIGTERM or a cancel), it saves its state here; a run
of the same config on the same kind of device loads it and continues, and the numbers are the
ones an uninterrupted run gives (tests/test_faults.py checks this bit for bit on the CPU).

The folder is keyed by the whole config and the device, lives under the artifact cache
(<cache>/checkpoints/<key>/) and is removed when the run finishes. Model weights and tensors are
safetensors, arrays a .npz read without pickle, the rest JSON; the folder is sealed with the
cache's checksums (backend/cache.py), so a damaged checkpoint is discarded (the run then starts
from step 0 and says so) instead of trusted. A SIGKILL saves nothing: such a run restarts from
step 0 when it is submitted again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from backend.assets import load_state, save_state
from backend.cache import MANIFEST, ArtifactCache, seal, stable_hash, temp_folder, verify

FOLDER = "checkpoints"


class Checkpoint:
    """models/<name>.safetensors, tensors.safetensors, arrays.npz and state.json in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.problem: str | None = None  # why a stored checkpoint was discarded

    @classmethod
    def of_run(cls, cache: ArtifactCache, config: dict, device: torch.device) -> Checkpoint | None:
        """The checkpoint of this config on this kind of device (None when nothing is cached)."""
        if not cache.enabled:
            return None
        key = stable_hash("checkpoint", config, torch.device(device).type)
        cache.sweep(cache.root / FOLDER)  # temporary folders of killed runs
        return cls(cache.root / FOLDER / key)

    def exists(self) -> bool:
        return (self.folder / MANIFEST).exists()

    def save(
        self,
        models: dict[str, torch.nn.Module],
        tensors: dict[str, torch.Tensor],
        arrays: dict[str, np.ndarray],
        state: dict,
    ) -> None:
        """Replace the stored state (written to a temporary folder, sealed, then renamed)."""
        tmp = temp_folder(self.folder.parent, self.folder.name)
        try:
            (tmp / "models").mkdir()
            for name, model in models.items():
                save_state(model, tmp / "models" / f"{name}.safetensors")
            flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(flat, str(tmp / "tensors.safetensors"))
            with open(tmp / "arrays.npz", "wb") as fh:
                np.savez(fh, **arrays)
            (tmp / "state.json").write_text(json.dumps(state))
            seal(tmp)
            self.clear()
            os.replace(tmp, self.folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def load(
        self, models: dict[str, torch.nn.Module]
    ) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray], dict] | None:
        """Load the models' weights in place and return (tensors, arrays, state); None when there
        is no checkpoint, or when it is damaged (then discarded, with `problem` saying why)."""
        if not self.exists():
            return None
        problem = verify(self.folder)
        if problem is None:
            try:
                for name, model in models.items():
                    load_state(model, self.folder / "models" / f"{name}.safetensors")
                tensors = load_file(str(self.folder / "tensors.safetensors"))
                with np.load(self.folder / "arrays.npz", allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
                return tensors, arrays, json.loads((self.folder / "state.json").read_text())
            except Exception as e:  # what a damaged file raises varies by format
                problem = f"it could not be read ({type(e).__name__})"
        self.problem = f"the checkpoint {self.folder} was discarded: {problem}"
        self.clear()
        return None

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
