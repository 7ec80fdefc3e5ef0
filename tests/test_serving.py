"""The started app as others would meet it: scripts/start.sh listens on loopback only (read from
the kernel's table of listening sockets), serving to others needs an access mode, and in a real
browser a read-only visitor sees results without the buttons that change things, user text is
text (an image link in a run name or a share link fetches nothing), and an error shows no
traceback."""

from __future__ import annotations

import http.server
import ipaddress
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from tests.app_support import example
from tests.jobs_support import REPO, job_env, wait_for
from tests.test_e2e_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PLOTS,
    VIEWPORT,
    StreamlitServer,
    free_port,
)

pytestmark = pytest.mark.timeout(300)


def listening(port: int) -> list[str]:
    """The local addresses that listen on TCP `port`, from /proc/net/tcp and tcp6."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr)
            # The kernel writes each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, width // 2, 4))
            found.append(str(ipaddress.ip_address(words)))
    return found


class StartScript:
    """`bash scripts/start.sh` (a worker and the app) in its own process group."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.log = tmp_path / "start.log"
        full = {**job_env(tmp_path / "data"), "GOODHART_PORT": str(self.port), **env}
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                ["bash", "scripts/start.sh"], cwd=REPO, env=full, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def addresses(self) -> list[str]:
        if self.proc.poll() is not None:
            raise AssertionError(f"start.sh exited:\n{self.log.read_text()}")
        return listening(self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def test_start_sh_listens_on_loopback_only(tmp_path):
    app = StartScript(tmp_path)
    try:
        addresses = wait_for(app.addresses, 180, "the app to listen")
        time.sleep(1.0)  # every socket it opens is open
        addresses = app.addresses()
    finally:
        app.stop()
    assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses), addresses


def test_serving_to_others_needs_an_access_mode(tmp_path):
    env = {**job_env(tmp_path / "data"), "GOODHART_ADDRESS": "0.0.0.0"}
    env.pop("GOODHART_ACCESS", None)
    p = subprocess.run(["bash", "scripts/start.sh"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert p.returncode == 2 and "GOODHART_ACCESS=read-only" in p.stderr
    p = subprocess.run(["bash", "scripts/start.sh"], cwd=REPO, capture_output=True, text=True,
                       env={**env, "GOODHART_ACCESS": "token"}, timeout=60)  # fmt: skip
    assert p.returncode == 2 and "GOODHART_TOKEN" in p.stderr


def test_a_deliberate_read_only_server_listens_everywhere(tmp_path):
    app = StartScript(tmp_path, GOODHART_ADDRESS="0.0.0.0", GOODHART_ACCESS="read-only")
    try:
        addresses = wait_for(app.addresses, 180, "the app to listen")
    finally:
        app.stop()
    assert "0.0.0.0" in addresses


# ---- a read-only visitor in a real browser ------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    """An 'attacker' host: records every request a page makes it receive."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Recorder.seen.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def visitor_server(tmp_path, monkeypatch):
    """A read-only app on a database holding a run with a hostile name and a malformed one."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's /usr/bin/chromium")
    from sqlalchemy import update

    from db.engine import writing
    from db.models import Experiment
    from tests.app_support import store_finished, use_temp_db

    url = use_temp_db(tmp_path, monkeypatch)
    host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    evil = f"http://127.0.0.1:{host.server_port}"
    Recorder.seen = []
    result, arrays = example()
    name = f"![pwn]({evil}/name.png) [click]({evil}/link) <img src={evil}/tag.png>"
    hostile = store_finished(result, arrays, name=name)
    broken = store_finished(result, arrays, name="malformed")
    with writing() as conn:  # a malformed stored summary and config: drawing them raises
        malformed = {"summary": {"mean": 5}, "config": {"method": "bon"}}
        conn.execute(update(Experiment).where(Experiment.id == broken).values(**malformed))
    env = {**job_env(tmp_path / "data"), "GOODHART_DB_URL": url, "GOODHART_ACCESS": "read-only"}
    server = StreamlitServer(env, tmp_path / "streamlit.log")
    try:
        wait_for(server.healthy, 120, "the Streamlit server's health check")
        yield server, evil, hostile, broken
    finally:
        server.stop()
        host.shutdown()


def test_a_read_only_visitor_in_a_real_browser(visitor_server, tmp_path):
    from playwright.sync_api import sync_playwright

    server, evil, hostile, broken = visitor_server
    shots = tmp_path / "shots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{server.url}/?run={hostile}")
            page.wait_for_function(f"() => {PLOTS}.length > 0", timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shots / "hostile-name.png"))
            heading = page.locator("h1").first.inner_text()
            assert "![pwn]" in heading and "<img" in heading  # shown as the text it is
            assert page.locator(f"img[src^='{evil}']").count() == 0
            assert page.locator("h1 a[href^='http'], h1 img").count() == 0  # no link, no image
            assert "Read-only" in page.locator("[data-testid=stSidebar]").inner_text()
            for label in ("Submit it again", "Cancel this run", "Delete…", "Cancel"):
                assert page.get_by_role("button", name=label, exact=True).count() == 0

            page.goto(f"{server.url}/?run=![x]({evil}/link.png)")
            page.get_by_text("is not a run id").wait_for(timeout=60_000)
            assert page.locator(f"img[src^='{evil}']").count() == 0

            page.goto(f"{server.url}/runs")
            page.get_by_role("heading", name="Runs").wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shots / "runs.png"))
            assert page.get_by_role("button", name="Delete…").count() == 0
            assert "turned off" in page.inner_text("body")
            page.goto(f"{server.url}/new")
            page.get_by_role("heading", name="New experiment").wait_for(timeout=60_000)
            assert page.get_by_role("button", name="Submit", exact=True).count() == 0

            page.goto(f"{server.url}/?compare={hostile},{broken}")
            page.wait_for_timeout(4000)
            page.screenshot(path=str(shots / "error.png"))
            body = page.inner_text("body")
            assert "redacted" in body  # Streamlit's generic message (client.showErrorDetails)
            assert "Traceback" not in body and "TypeError" not in body and "/app/" not in body
            page.goto(f"{server.url}/?run={broken}")
            page.get_by_text("could not be drawn").wait_for(timeout=60_000)
            assert "Traceback" not in page.inner_text("body")
        finally:
            browser.close()
    time.sleep(0.5)
    assert Recorder.seen == []  # no visitor's browser fetched the attacker's addresses
