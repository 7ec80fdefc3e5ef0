"""The first start as a newcomer sees it in the terminal: `bash scripts/start.sh` says what it is
doing and roughly how long it takes, and prints no wall of third-party warnings."""

from __future__ import annotations

import re
import urllib.request

from tests.jobs_support import wait_for
from tests.test_serving import StartScript

NOISE = re.compile(r"WARNING|Warning|\[transformers\]|alembic|Uvicorn|pip |Traceback", re.I)


def test_start_says_what_it_does_and_stays_quiet(tmp_path):
    app = StartScript(tmp_path)

    def ready() -> bool:
        app.addresses()  # fails the test if start.sh exited
        if " ready: worker " not in app.log.read_text():
            return False
        try:
            url = f"http://127.0.0.1:{app.port}/_stcore/health"
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().strip() == b"ok"
        except OSError:
            return False

    try:
        wait_for(ready, 180, "the worker and the app")
        with urllib.request.urlopen(f"http://127.0.0.1:{app.port}/", timeout=10):
            pass  # a first page request: whatever the server logs for it is in the log too
    finally:
        app.stop()
    text = app.log.read_text()
    assert "Starting a worker" in text and "10-30 s" in text
    assert f"open http://127.0.0.1:{app.port} in a browser" in text
    noisy = [line for line in text.splitlines() if NOISE.search(line)]
    assert not noisy, text


def test_training_an_sft_policy_prints_no_attention_mask_warning(capfd):
    from backend.config import SftConfig
    from backend.worlds.registry import get_world
    from backend.worlds.sft import train_sft

    train_sft(get_world("toy-lists"), SftConfig(steps=3, batch_size=32))  # padded batches
    err = capfd.readouterr().err
    assert "attention_mask" not in err and "[transformers]" not in err, err
