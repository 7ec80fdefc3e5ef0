"""Faults a run meets and what it does about them: corrupt or cut-short cache files (discarded,
rebuilt once, reported), temporary folders of killed processes (swept), a PPO run stopped at a
step boundary (resumed where it stopped, with the same numbers), kill -9 of a worker at each
stage (failed with a clear error, nothing half-written left behind, a resubmit finishes)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from jobs_support import REPO, WorkerProcess, job_env, tiny_config, wait_for

from backend.cache import MANIFEST, TMP_TAG, ArtifactCache, CorruptArtifact
from backend.checkpoint import FOLDER as CHECKPOINTS
from backend.config import ExperimentConfig
from backend.experiment import run_experiment
from backend.presets import get_preset
from backend.runtime import Cancelled

pytestmark = pytest.mark.timeout(600)

TINY = {
    "preferences.pairs": 200, "preferences.eval_pairs": 50, "reward_models.members": 2,
    "bon.num_prompts": 4, "bon.samples": 64,
}  # fmt: skip


def tiny_bon(seed: int = 0) -> ExperimentConfig:
    return ExperimentConfig().replace(seed=seed, **TINY)


def tiny_ppo(**changes) -> ExperimentConfig:
    return get_preset("toy-ppo").replace(
        **{
            "preferences.pairs": 200, "preferences.eval_pairs": 50, "reward_models.members": 2,
            "reward_models.epochs": 1, "ppo.steps": 6, "ppo.eval_every": 2,
            "ppo.norm_samples": 256, "ppo.eval_samples": 16, "ppo.batch_size": 16, **changes,
        }
    )  # fmt: skip


def artifact(root: Path, stage: str) -> Path:
    (folder,) = [p for p in (root / stage).iterdir() if not p.name.startswith(".")]
    return folder


# ---- the artifact cache ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """A tiny best-of-n run with its cache, and its result."""
    root = tmp_path_factory.mktemp("cache")
    out = run_experiment(tiny_bon(), cache=ArtifactCache(root))
    assert out.result["cache_repairs"] == []
    return root, out


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":  # same size, middle overwritten: only the checksum can tell
        mid = len(data) // 2
        path.write_bytes(
            data[:mid] + bytes(255 - b for b in data[mid : mid + 64]) + data[mid + 64 :]
        )
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()


@pytest.mark.parametrize(
    ("stage", "file", "how"),
    [
        ("samples", "samples.npz", "truncate"),
        ("samples", "samples.npz", "garbage"),
        ("proxy", "model.safetensors", "garbage"),
        ("proxy", "model.safetensors", "truncate"),
        ("proxy", "stats.json", "empty"),
        ("scores", "scores.npy", "truncate"),
        ("prefs", "train.npz", "delete"),
    ],
)
def test_a_corrupt_stage_is_rebuilt_once_and_the_result_says_so(
    healthy, tmp_path, stage, file, how
):
    import shutil

    root = tmp_path / "cache"
    shutil.copytree(healthy[0], root)
    folders = sorted((root / stage).iterdir())
    corrupt(folders[0] / file, how)
    out = run_experiment(tiny_bon(), cache=ArtifactCache(root))
    (repair,) = out.result["cache_repairs"]
    assert repair["artifact"] == f"{stage}/{folders[0].name}" and repair["action"] == "rebuilt"
    assert file in repair["problem"] or "could not be read" in repair["problem"]
    # Same numbers as the healthy run: the rebuilt artifact is the one the config makes.
    assert out.result["curves"] == healthy[1].result["curves"]
    np.testing.assert_array_equal(out.arrays["proxy"], healthy[1].arrays["proxy"])
    # Healed for good: the next run hits every artifact and repairs nothing.
    cache = ArtifactCache(root)
    again = run_experiment(tiny_bon(), cache=cache)
    assert again.result["cache_repairs"] == [] and f"{stage}/{folders[0].name}" in cache.hits
    assert not [p for p in (root / stage).iterdir() if p.name.startswith(".")]


def test_a_corrupt_artifact_that_stays_corrupt_is_an_error_not_a_loop(tmp_path):
    cache = ArtifactCache(tmp_path)

    def build(folder: Path) -> None:
        (folder / "x.json").write_text("{not json")

    with pytest.raises(CorruptArtifact, match="built again and still cannot be read"):
        cache.load_or_create("stage", "k", build, lambda f: json.loads((f / "x.json").read_text()))


def test_the_manifest_lists_every_file_with_its_checksum(healthy):
    import hashlib

    folder = artifact(healthy[0], "samples")
    sums = json.loads((folder / MANIFEST).read_text())
    digest = hashlib.sha256((folder / "samples.npz").read_bytes()).hexdigest()
    assert sums == {"samples.npz": digest}


def test_cache_keys_are_unchanged_by_the_checks(healthy):
    """The folders a config finds are the ones it found before checksums (the hash of the same
    key parts): a healthy cache from before is reused as it is."""
    from backend.cache import stable_hash
    from backend.policy import SAMPLER_KEY
    from backend.worlds.registry import get_world
    from backend.worlds.sft import sft_key

    cfg = tiny_bon()
    sft = sft_key(get_world(cfg.world), cfg.sft)
    samples = stable_hash(sft, cfg.bon.num_prompts, cfg.bon.samples, cfg.seed, SAMPLER_KEY)
    assert artifact(healthy[0], "samples").name == samples


def test_an_old_artifact_without_checksums_is_still_used(healthy, tmp_path):
    import shutil

    root = tmp_path / "cache"
    shutil.copytree(healthy[0], root)
    for manifest in root.glob(f"*/*/{MANIFEST}"):
        manifest.write_text("")  # as written before checksums
    cache = ArtifactCache(root)
    out = run_experiment(tiny_bon(), cache=cache)
    assert out.result["cache_repairs"] == [] and len(cache.hits) == len(out.result["cache_hits"])
    assert {h.split("/")[0] for h in cache.hits} == {"prefs", "proxy", "samples", "scores"}


def test_temporary_folders_of_dead_processes_are_swept(healthy, tmp_path):
    import socket

    root = tmp_path / "cache"
    (root / "samples").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    host = socket.gethostname()
    orphan = root / "samples" / f".abc{TMP_TAG}{host}-{dead}-xyz"
    mine = root / "samples" / f".abc{TMP_TAG}{host}-{os.getpid()}-xyz"
    other_host = root / "samples" / f".abc{TMP_TAG}elsewhere-1-xyz"
    for p in (orphan, mine, other_host):
        p.mkdir()
    removed = ArtifactCache(root).sweep(root / "samples")
    assert removed == [orphan] and mine.exists() and other_host.exists()


# ---- PPO checkpoints -----------------------------------------------------------------------------


def stop_after_step(step: int):
    """(progress, should_stop) that stop the run at the boundary after PPO step `step` was
    reported (step + 1), as a worker's SIGTERM does."""
    seen = {"ppo": False}

    def progress(frac: float, msg: str) -> None:
        seen["ppo"] = msg.startswith(f"PPO step {step}/")

    return progress, lambda: seen["ppo"]


def test_a_stopped_ppo_run_resumes_where_it_stopped_with_the_same_numbers(tmp_path):
    straight = run_experiment(tiny_ppo(), cache=ArtifactCache(tmp_path / "a"))
    assert "checkpoint" not in straight.result

    cache = ArtifactCache(tmp_path / "b")
    progress, should_stop = stop_after_step(4)
    with pytest.raises(Cancelled):
        run_experiment(tiny_ppo(), progress=progress, should_stop=should_stop, cache=cache)
    (saved,) = (tmp_path / "b" / CHECKPOINTS).iterdir()
    assert (saved / MANIFEST).exists()

    steps = []
    resumed = run_experiment(
        tiny_ppo(), progress=lambda f, m: steps.append(m), cache=ArtifactCache(tmp_path / "b")
    )
    assert resumed.result["checkpoint"] == {"resumed_at_step": 5, "problem": None}
    assert not [m for m in steps if m.startswith(("PPO step 1/", "PPO step 3/"))]
    for key in ("curves", "samples", "training", "normalization"):
        assert resumed.result[key] == straight.result[key], key
    for key, value in straight.arrays.items():
        np.testing.assert_array_equal(resumed.arrays[key], value)
    assert not list((tmp_path / "b" / CHECKPOINTS).iterdir())  # finished: removed


def test_a_damaged_checkpoint_is_discarded_and_the_run_starts_over(tmp_path):
    straight = run_experiment(tiny_ppo(), cache=ArtifactCache(tmp_path / "a"))
    progress, should_stop = stop_after_step(2)
    with pytest.raises(Cancelled):
        run_experiment(
            tiny_ppo(), progress=progress, should_stop=should_stop,
            cache=ArtifactCache(tmp_path / "b"),
        )  # fmt: skip
    (saved,) = (tmp_path / "b" / CHECKPOINTS).iterdir()
    corrupt(saved / "models" / "policy.safetensors", "garbage")
    out = run_experiment(tiny_ppo(), cache=ArtifactCache(tmp_path / "b"))
    assert out.result["checkpoint"]["resumed_at_step"] is None
    assert "discarded" in out.result["checkpoint"]["problem"]
    assert out.result["curves"] == straight.result["curves"]


# ---- kill -9 at each stage, SIGTERM during PPO ------------------------------------------------

# Progress messages of the stages of a best-of-n run, in order (backend/experiment.py). The
# best-of-n answers are sampled in a forked child beside the pairs (Runner.samples_beside): the
# first kill ends it mid-sampling too (it stops at its next progress message, its folder left
# half-written for the next run to sweep).
STAGES = ["sampling and labelling", "training proxy", "scoring the"]


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A database and data folder of its own; workers started with start(name)."""
    data = tmp_path / "data"
    url = f"sqlite:///{tmp_path / 'lab.sqlite3'}"
    monkeypatch.setenv("GOODHART_DATA_DIR", str(data))
    monkeypatch.setenv("GOODHART_DB_URL", url)
    monkeypatch.delenv("GOODHART_REDIS_URL", raising=False)
    workers = []

    def start(name: str) -> WorkerProcess:
        w = WorkerProcess(url, job_env(data), tmp_path / f"{name}.log")
        workers.append(w)
        return w

    yield data, start
    for w in workers:
        w.stop(signal.SIGKILL)


def _status(eid: str, stage: str | None = None):
    from db import api

    exp = api.get_experiment(eid)
    if stage is None:
        return exp if exp["status"] in ("done", "failed", "cancelled") else None
    return exp if stage in (exp["stage"] or "") else None


def _ppo_step(eid: str) -> int:
    """The PPO step the run's stage line reports (0 before PPO starts)."""
    from db import api

    m = re.search(r"PPO step (\d+)/", api.get_experiment(eid)["stage"] or "")
    return int(m.group(1)) if m else 0


def test_kill_9_at_each_stage_fails_cleanly_and_a_resubmit_finishes(lab):
    """One config killed at each stage in turn (each resubmission gets further: the stages it
    finished come from the cache), then run to the end."""
    from db import api

    data, start = lab
    cfg = tiny_config(seed=40).replace(  # every stage long enough to be killed inside (the
        # scoring of 20 x 4,096 answers by 2 proxies took under 0.2 s once proxy_step scored it)
        **{"preferences.pairs": 30_000, "bon.num_prompts": 20, "bon.samples": 16_384}
    )
    worker = start("w0")
    left = []
    for n, stage in enumerate(STAGES):
        eid = api.submit(cfg)
        wait_for(lambda eid=eid, stage=stage: _status(eid, stage), 300, stage, worker)
        time.sleep(0.2)  # inside the stage's build
        worker.stop(signal.SIGKILL)
        left += list((data / "cache").rglob(f"*{TMP_TAG}*"))
        worker = start(f"w{n + 1}")
        worker.wait_ready()  # recovery runs first
        exp = api.get_experiment(eid)
        assert exp["status"] == "failed", exp
        assert "stopped while running" in exp["error"] and stage in exp["error"]
        assert exp["result"] is None
    eid = api.submit(cfg)
    exp = wait_for(lambda: _status(eid), 400, f"{eid} finished", worker)
    assert exp["status"] == "done", exp["error"]
    assert exp["result"]["cache_repairs"] == []
    assert left  # what kill -9 left behind ...
    assert not list((data / "cache").rglob(f"*{TMP_TAG}*"))  # ... is swept
    assert not list((data / "artifacts").glob(".*"))


def test_sigterm_during_ppo_resumes_on_the_next_worker(lab):
    from db import api

    data, start = lab
    cfg = tiny_ppo(**{"ppo.steps": 300, "ppo.eval_every": 50})
    leaving = start("leaving")
    eid = api.submit(cfg)
    # Steps take tens of ms each and every one overwrites the stage, so wait for step 60 or later
    # (polling for "PPO step 60/" exactly can miss it: it did in CI, and the run then finished).
    wait_for(lambda: _ppo_step(eid) >= 60 or _status(eid), 300, "PPO step 60 or later", leaving)
    assert _status(eid) is None, "the run finished before it could be stopped"
    assert leaving.stop(signal.SIGTERM) == 0
    exp = api.get_experiment(eid)
    assert exp["status"] == "queued" and (data / "cache" / CHECKPOINTS).exists()
    taker = start("taker")
    exp = wait_for(lambda: _status(eid), 400, f"{eid} finished", taker)
    assert exp["status"] == "done", exp["error"]
    resumed = exp["result"]["checkpoint"]["resumed_at_step"]
    assert resumed >= 60
    assert [p["step"] for p in exp["result"]["curves"][0]["points"]] == list(range(0, 301, 50))
    assert len(exp["result"]["training"]) == 300
    assert not list((data / "cache" / CHECKPOINTS).iterdir())


def test_kill_9_during_a_cli_run_leaves_nothing_half_written(tmp_path):
    env = {**job_env(tmp_path / "data")}
    out = tmp_path / "r.json"
    args = [sys.executable, "-m", "backend", "run", "--pairs", "3000", "--members", "2",
            "--rm-epochs", "80", "--num-prompts", "20", "--samples", "1024",
            "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "training proxy" in line and "epoch" in line:
            break
    time.sleep(1.0)  # inside the proxies' builds (about 5 s: children train them side by side)
    proc.kill()
    proc.wait(30)
    time.sleep(1.0)  # the children notice their parent is gone at their next progress message
    assert not out.exists()
    cache = tmp_path / "data" / "cache"
    assert list(cache.rglob(f"*{TMP_TAG}*"))  # what kill -9 leaves
    again = subprocess.run([*args, "--quiet"], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert not list(cache.rglob(f"*{TMP_TAG}*"))  # swept by the next run
    assert json.loads(out.read_text())["cache_repairs"] == []
