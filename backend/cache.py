"""Stage artifacts cached on disk under a hash of the config that produced them.

A stage's key hashes everything upstream of it (the key of the stage it reads, plus its own
config), so a run that changes only something downstream (an objective, lambda) reuses every
artifact. Writes go to a temporary folder that is renamed into place, so a crash never leaves a
half-written artifact that a later run would trust.

What a stored artifact can suffer, and what happens then:
- A file changed or cut short after it was written (a full disk, a bad copy, an edit): the
  folder's `.complete` lists the SHA-256 of every file (fsynced, like the files, before the
  rename), and a hit is checked against it; then the stage's own loader must read it. Either
  failing discards the artifact, rebuilds it once and records why in `repairs` (the result's
  `cache_repairs`). Artifacts written before checksums (an empty `.complete`) get the load check.
- A process killed while building (kill -9, the out-of-memory killer): its temporary folder
  `.<key>.tmp-<host>-<pid>-*` is swept by the next cache user once that process is gone.
Cache keys do not depend on any of this: the same config finds the same folder as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
MANIFEST = ".complete"  # {file name: sha256}; empty in artifacts written before checksums
TMP_TAG = ".tmp-"  # temporary folders: .<key>.tmp-<host>-<pid>-<random>
STALE_TMP_S = 24 * 3600  # another machine's temporary folder older than this is abandoned

log = logging.getLogger("goodhart.cache")


def data_dir() -> Path:
    """GOODHART_DATA_DIR, default ./data (results, cache, database)."""
    return Path(os.environ.get("GOODHART_DATA_DIR", "data")).resolve()


def can_create_in(folder: Path) -> bool:
    """Whether a file can be created in `folder` (or, if it does not exist yet, in the nearest
    folder above it that does): tried with a temporary file, since permission bits do not tell
    for root or for /proc, /sys and read-only mounts."""
    folder = Path(folder).absolute()
    while not folder.exists():
        folder = folder.parent
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def stable_hash(*parts) -> str:
    """A short hash of JSON-serializable parts (key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this machine still runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process its parent has not reaped yet is a zombie: dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class CorruptArtifact(RuntimeError):
    """A cached artifact that was rebuilt and still cannot be read."""


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal(folder: Path) -> None:
    """Write the manifest of a built folder: every file fsynced and checksummed, then the
    manifest itself and the folder fsynced, so `.complete` never names data still in flight."""
    sums = {}
    for p in _files(folder):
        _fsync(p)
        sums[p.relative_to(folder).as_posix()] = _sha256(p)
    manifest = folder / MANIFEST
    manifest.write_text(json.dumps(sums, indent=0, sort_keys=True))
    _fsync(manifest)
    _fsync(folder)


def verify(folder: Path) -> str | None:
    """What is wrong with a sealed folder's files (None: they match their checksums, or the
    folder predates checksums)."""
    text = (folder / MANIFEST).read_text()
    if not text.strip():
        return None
    try:
        sums = json.loads(text)
    except json.JSONDecodeError:
        return f"its {MANIFEST} is not readable"
    for name, want in sums.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if _sha256(path) != want:
            return f"{name} does not match its checksum (changed or cut short)"
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _is_resource_error(e: BaseException) -> bool:
    """Out of memory is not corruption: the artifact is fine, the machine is short."""
    return isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"


class ArtifactCache:
    """Folders of artifacts: root/stage/key/. `enabled=False` computes into a throwaway folder."""

    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else data_dir() / "cache"
        self.enabled = enabled
        self.hits: list[str] = []  # "stage/key" of artifacts reused in this run
        self.repairs: list[dict] = []  # {artifact, problem, action} of corrupt ones rebuilt
        self._swept: set[Path] = set()

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def has(self, stage: str, key: str) -> bool:
        """Whether (stage, key) is built (for the cost estimate: its checksums are checked only
        when it is loaded)."""
        return self.enabled and (self.path(stage, key) / MANIFEST).exists()

    def get_or_create(self, stage: str, key: str, build: Callable[[Path], None]) -> Path:
        """The folder for (stage, key); build(folder) fills it the first time. Its files match
        their checksums (a corrupt copy is rebuilt)."""
        return self.load_or_create(stage, key, build, lambda folder: folder)

    def load_or_create(
        self, stage: str, key: str, build: Callable[[Path], None], load: Callable[[Path], T]
    ) -> T:
        """load(folder) of the artifact (stage, key), built by build(folder) the first time.
        A stored copy that fails its checksums or its load is discarded and built again, once
        (recorded in `repairs`); if the new copy cannot be loaded either, CorruptArtifact."""
        final = self.path(stage, key)
        self.sweep(final.parent)
        manifest = final / MANIFEST
        if self.enabled and manifest.exists():
            seen = manifest.stat().st_ino
            problem = verify(final)
            if problem is None:
                try:
                    value = load(final)
                except Exception as e:
                    if _is_resource_error(e):
                        raise
                    problem = f"it could not be read ({_first_line(e)})"
                else:
                    self.hits.append(f"{stage}/{key}")
                    return value
            self._discard(final, seen, f"{stage}/{key}", problem)
        folder = self._build(final, key, build)
        try:
            return load(folder)
        except Exception as e:
            if _is_resource_error(e):
                raise
            raise CorruptArtifact(
                f"the cached {stage} artifact {folder} was built again and still cannot be read "
                f"({_first_line(e)})"
            ) from e

    def _discard(self, final: Path, inode: int, name: str, problem: str) -> None:
        """Move a corrupt artifact out of the way (unless another process already replaced it)
        and note it."""
        log.warning("cache: %s is corrupt (%s): discarded, building it again", name, problem)
        self.repairs.append({"artifact": name, "problem": problem, "action": "rebuilt"})
        try:
            if (final / MANIFEST).stat().st_ino != inode:
                return  # someone rebuilt it meanwhile
            aside = final.with_name(f".{final.name}{TMP_TAG}{_owner()}-corrupt")
            os.replace(final, aside)
        except OSError:
            return
        shutil.rmtree(aside, ignore_errors=True)

    def _build(self, final: Path, key: str, build: Callable[[Path], None]) -> Path:
        tmp = temp_folder(final.parent, key)
        try:
            build(tmp)
            seal(tmp)
            if final.exists():  # a stale or disabled-cache copy: replace it
                shutil.rmtree(final, ignore_errors=True)
            try:
                os.replace(tmp, final)
            except OSError:  # another process finished the same artifact first: use theirs
                shutil.rmtree(tmp, ignore_errors=True)
            _fsync(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def sweep_all(self) -> list[Path]:
        """sweep() every stage folder of the cache (a worker does this when it starts)."""
        removed: list[Path] = []
        for stage in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if stage.is_dir():
                removed += self.sweep(stage)
        return removed

    def sweep(self, folder: Path) -> list[Path]:
        """Remove the temporary folders in `folder` left by processes that are gone (once per
        folder and cache object). Returns what was removed."""
        if folder in self._swept or not folder.is_dir():
            return []
        self._swept.add(folder)
        removed = []
        for p in folder.iterdir():
            if p.name.startswith(".") and TMP_TAG in p.name and _abandoned(p):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        if removed:
            log.info("cache: swept %d abandoned temporary folder(s) in %s", len(removed), folder)
        return removed


def _owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def temp_folder(parent: Path, name: str) -> Path:
    """A new temporary folder in `parent` for what becomes parent/name, named so that
    ArtifactCache.sweep can tell which process it belongs to."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{name}{TMP_TAG}{_owner()}-", dir=parent))


def _abandoned(tmp: Path) -> bool:
    """A temporary folder (.<key>.tmp-<host>-<pid>-<suffix>) whose process is gone (this
    machine), or that is old (another machine's)."""
    parts = tmp.name.split(TMP_TAG, 1)[1].rsplit("-", 2)  # host names may contain "-"
    if len(parts) == 3 and parts[0] == socket.gethostname() and parts[1].isdigit():
        return not process_alive(int(parts[1]))
    try:
        return time.time() - tmp.stat().st_mtime > STALE_TMP_S
    except OSError:
        return False
