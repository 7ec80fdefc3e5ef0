"""Stage artifacts cached on disk under a hash of the config that produced them.

A stage's key hashes everything upstream of it (the key of the stage it reads, plus its own
config), so a run that changes only something downstream (an objective, lambda) reuses every
artifact. Writes go to a temporary folder that is renamed into place, so a crash never leaves a
half-written artifact that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def data_dir() -> Path:
    """GOODHART_DATA_DIR, default ./data (results, cache, database)."""
    return Path(os.environ.get("GOODHART_DATA_DIR", "data")).resolve()


def stable_hash(*parts) -> str:
    """A short hash of JSON-serializable parts (key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class ArtifactCache:
    """Folders of artifacts: root/stage/key/. `enabled=False` computes into a throwaway folder."""

    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else data_dir() / "cache"
        self.enabled = enabled
        self.hits: list[str] = []  # "stage/key" of artifacts reused in this run

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def get_or_create(self, stage: str, key: str, build: Callable[[Path], None]) -> Path:
        """The folder for (stage, key); build(folder) fills it the first time."""
        final = self.path(stage, key)
        if self.enabled and (final / ".complete").exists():
            self.hits.append(f"{stage}/{key}")
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            build(tmp)
            (tmp / ".complete").touch()
            if final.exists():  # a stale or disabled-cache copy: replace it
                shutil.rmtree(final, ignore_errors=True)
            try:
                os.replace(tmp, final)
            except OSError:  # another process finished the same artifact first: use theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final
