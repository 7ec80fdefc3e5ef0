"""Serving the app to others (app/access.py, docs/serving.md): the read-only visitor's pages and
buttons, the token sign-in, failing closed, the hf world's files restricted to the allowed
folders without echoing contents, user text shown as text, and a Result page that survives a
broken score matrix. Through streamlit.testing.v1.AppTest on a real database."""

from __future__ import annotations

import re

import numpy as np
import pytest
from streamlit import config as st_config

from app import access, store
from app.escape import WORD_JOINER, md
from tests.app_support import (
    app_test,
    chart_args,
    example,
    figure,
    no_exceptions,
    open_page,
    store_finished,
    use_temp_db,
)
from tests.jobs_support import tiny_config

TOKEN = "correct horse battery staple"
WRITE_BUTTONS = {"submit", "runs_cancel", "runs_delete", "result_cancel", "result_resubmit",
                 "repro_start", "run_toy-bon", "run_toy-ppo"}  # fmt: skip


@pytest.fixture
def db(tmp_path, monkeypatch):
    return use_temp_db(tmp_path, monkeypatch)


@pytest.fixture
def address():
    """Set server.address for one test (AppTest reads the running process's config)."""
    before = st_config.get_option("server.address")

    def set_address(value: str) -> None:
        st_config.set_option("server.address", value)

    yield set_address
    st_config.set_option("server.address", before)


@pytest.fixture
def bon_run(db):
    result, arrays = example()
    return store_finished(result, arrays, name="example run")


def buttons(at) -> set[str]:
    keys = {b.key for b in at.button}
    return {k for k in keys if k}


def failed_run(name: str = "broken") -> str:
    from db import api, jobs

    eid = api.submit(tiny_config(), name=name)
    jobs.claim(eid, "test:1")
    jobs.fail(eid, "test:1", 'Traceback (most recent call last):\n  File "/secret/path.py"\nOops')
    return eid


# ---- modes ---------------------------------------------------------------------------------------


def test_the_default_is_local_on_loopback(db, address):
    address("127.0.0.1")
    assert access.policy() == access.Policy("local") and access.can_change()
    assert access.allowed_dirs() is None


@pytest.mark.parametrize("where", ["0.0.0.0", "", "192.168.1.7", "::"])
def test_served_to_others_without_an_access_mode_fails_closed(db, address, monkeypatch, where):
    address(where)
    monkeypatch.delenv("GOODHART_ACCESS", raising=False)
    p = access.policy()
    assert p.mode == "read-only" and "no access mode was chosen" in p.reason
    assert not access.can_change()


@pytest.mark.parametrize(
    ("env", "reason"),
    [({"GOODHART_ACCESS": "open"}, "not one of"), ({"GOODHART_ACCESS": "token"}, "GOODHART_TOKEN"),
     ({"GOODHART_ACCESS": "token", "GOODHART_TOKEN": "short"}, "16+")],
)  # fmt: skip
def test_bad_access_settings_fail_closed(db, address, monkeypatch, env, reason):
    address("0.0.0.0")
    monkeypatch.delenv("GOODHART_TOKEN", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    p = access.policy()
    assert p.mode == "read-only" and reason in p.reason


def test_a_read_only_visitor_opens_results_but_changes_nothing(db, bon_run, address, monkeypatch):
    from db import api

    address("0.0.0.0")
    monkeypatch.setenv("GOODHART_ACCESS", "read-only")
    broken = failed_run()
    running = api.submit(tiny_config(seed=1))
    pages = [app_test(), app_test({"run": bon_run}), app_test({"run": broken}),
             app_test({"run": running}), app_test({"compare": f"{bon_run},{broken}"})]  # fmt: skip
    for at in pages:
        at.run()
        no_exceptions(at)
        assert not buttons(at) & WRITE_BUTTONS, buttons(at)
    assert figure(pages[1])["data"] and figure(pages[4])["data"]  # results and comparisons
    assert any("Read-only" in i.value for i in pages[0].sidebar.info)
    assert not pages[2].expander  # no traceback for a visitor, only the last line
    assert "Oops" in pages[2].error[0].value and "/secret" not in str(pages[2].error[0].value)
    for page in ("views/new_experiment.py", "views/runs.py", "views/reproduction.py"):
        at = open_page(page)
        assert not buttons(at) & WRITE_BUTTONS, (page, buttons(at))
    at = open_page("views/runs.py")
    at.multiselect(key="runs_selected").set_value([bon_run]).run()
    assert {"runs_open"} <= buttons(at) and not buttons(at) & WRITE_BUTTONS
    # The facade refuses too, whatever a page or a crafted message asks.
    actions = [
        lambda: store.submit(tiny_config()),
        lambda: store.cancel(running),
        lambda: store.delete(bon_run),
        lambda: store.start_reproduction(1, "tiny"),
    ]
    for action in actions:
        with pytest.raises(PermissionError, match="read-only"):
            action()
    assert {r["id"] for r in api.list_experiments()} == {bon_run, broken, running}


def test_token_mode_signs_in_with_the_token_only(db, bon_run, address, monkeypatch):
    from db import api

    address("0.0.0.0")
    monkeypatch.setenv("GOODHART_ACCESS", "token")
    monkeypatch.setenv("GOODHART_TOKEN", TOKEN)
    monkeypatch.setattr(access, "WRONG_TOKEN_DELAY_S", 0.0)
    at = app_test().run()
    assert not buttons(at) & WRITE_BUTTONS
    at.sidebar.text_input(key=access.TOKEN_INPUT).set_value("guess" * 4).run()
    at.button(key="access_sign_in").click().run()
    assert "not right" in at.sidebar.error[0].value and not buttons(at) & WRITE_BUTTONS
    at.sidebar.text_input(key=access.TOKEN_INPUT).set_value(TOKEN).run()
    at.button(key="access_sign_in").click().run()
    no_exceptions(at)
    assert "run_toy-bon" in buttons(at) and "Signed in" in at.sidebar.success[0].value
    assert at.session_state[access.TOKEN_INPUT] == ""  # the token is not kept in the widget
    at.button(key="run_toy-bon").click().run()
    no_exceptions(at)
    assert len(api.list_experiments()) == 2
    at.button(key="access_sign_out").click().run()
    assert not buttons(at) & WRITE_BUTTONS


# ---- the hf world's files on a shared server -----------------------------------------------------


def hf_config(prompt_file: str, policy: str):
    from backend.config import ExperimentConfig

    return ExperimentConfig(world="hf").replace(
        **{"hf.policy": policy, "hf.gold": policy, "hf.proxy_base": policy,
           "hf.prompt_file": prompt_file}
    )  # fmt: skip


def test_a_shared_server_reads_only_the_allowed_folders(db, tmp_path, address, monkeypatch):
    from backend.config import ConfigError

    address("0.0.0.0")
    monkeypatch.setenv("GOODHART_ACCESS", "read-only")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv("GOODHART_ALLOWED_DIRS", str(allowed))
    assert access.allowed_dirs() == [allowed.resolve()]
    from db import api

    messages = set()
    for path in ("/etc/passwd", "/no/such/file.jsonl", f"{allowed}/../secret.csv", "~/.bashrc"):
        with pytest.raises(ConfigError) as e:
            api.submit(hf_config(path, str(allowed / "m")), allowed_dirs=access.allowed_dirs())
        assert e.value.option == "--prompt-file"
        messages.add(e.value.message)
    assert len(messages) == 1  # the same answer whether the file exists or not: no oracle
    (message,) = messages
    assert "allowed folders" in message and "root:" not in message
    for model in ("/etc", "../models/x", "nobody/not-cached-model"):
        with pytest.raises(ConfigError) as e:
            api.submit(hf_config(str(allowed / "p.jsonl"), model), allowed_dirs=[allowed])
        assert e.value.option == "--policy"
        assert "allowed folders" in e.value.message or "downloads nothing" in e.value.message


def test_a_shared_server_does_not_echo_file_contents(tmp_path):
    from backend.config import ConfigError, HfWorldConfig
    from backend.worlds.hf.prompts import load_prompts

    secret = tmp_path / "secret.csv"
    secret.write_text("password,api_key\nhunter2,abc\n")
    with pytest.raises(ConfigError) as e:
        load_prompts(HfWorldConfig(prompt_file=str(secret)))
    assert "password" in e.value.message  # the owner at the command line sees the columns
    assert "password" not in e.value.public and "no column 'instruction'" in e.value.public
    jsonl = tmp_path / "secret.jsonl"
    jsonl.write_text('{"token": "hunter2"}\n')
    with pytest.raises(ConfigError) as e:
        load_prompts(HfWorldConfig(prompt_file=str(jsonl)))
    assert "token" in e.value.message and "token" not in e.value.public


# ---- user text is text ---------------------------------------------------------------------------


def markup(text: str) -> list[str]:
    """What Markdown could still read in text: an unescaped bracket, angle bracket, emphasis,
    code, dollar, or a bare http:// or www. link."""
    return re.findall(r"(?<!\\)[\[\]<>`*$!]|https?://|www\.", text)


NASTY = [
    "![x](http://127.0.0.1:9/p.png)",
    "[click me](http://evil.example/)",
    "<img src=http://127.0.0.1:9/q.png>",
    "see http://evil.example and www.evil.example, mail a@evil.example",
    ":red[alarm] $x^2$ **bold** `code` # heading",
    "1. a list\n- another",
]


@pytest.mark.parametrize("name", NASTY)
def test_run_names_are_shown_as_text(db, name):
    result, arrays = example()
    eid = store_finished(result, arrays, name=name)
    at = app_test({"run": eid}).run()
    no_exceptions(at)
    title = at.title[0].value
    assert title == md(name) and not markup(title)
    at = app_test({"compare": eid}).run()
    for trace in figure(at)["data"]:
        assert "<img" not in trace["name"] and "<a" not in trace["name"]


@pytest.mark.parametrize("link", NASTY[:3])
def test_ids_from_a_link_are_shown_as_text(db, link):
    for at in (app_test({"run": link}), app_test({"compare": link})):
        at.run()
        no_exceptions(at)
        text = " ".join(w.value for w in at.warning)
        quoted = re.findall("“(.*?)”", text)  # the pieces of the link the page echoes
        assert "is not a run id" in text and quoted and not markup(" ".join(quoted))


def test_md_escapes_what_markdown_reads_and_keeps_plain_text():
    assert md("toy-bon (preset)") == "toy-bon (preset)"
    assert md("between 0.0 and 0.5; got 0.7") == "between 0.0 and 0.5; got 0.7"
    assert md("![x](http://h/p.png)") == r"\!\[x\](http:" + WORD_JOINER + "//h/p.png)"
    assert md("a@b.org www.c.org") == f"a@{WORD_JOINER}b.org www{WORD_JOINER}.c.org"
    assert md("<b>") == r"\<b\>" and md("a\\b") == r"a\\b"


# ---- the Result page degrades --------------------------------------------------------------------


def artifact_file(eid: str):
    from backend.cache import data_dir

    return data_dir() / "artifacts" / f"{eid}.bon_scores.npz"


@pytest.mark.parametrize(
    ("damage", "words"),
    [("truncate", "cannot be read"), ("delete", "is missing"), ("shape", "is not usable")],
)
def test_a_broken_score_matrix_shows_the_stored_curves(db, bon_run, damage, words):
    path = artifact_file(bon_run)
    assert path.exists()
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "delete":
        path.unlink()
    else:
        np.savez(path, gold=np.zeros((2, 3)), proxy=np.zeros((4, 3, 1)))
    store.arrays_of.clear()
    at = app_test({"run": bon_run}).run()
    no_exceptions(at)
    assert (
        words in at.warning[0].value and "curves below are the stored ones" in at.warning[0].value
    )
    result, _ = example()
    fig = figure(at)
    assert len([t for t in fig["data"] if t["name"] == "mean"]) == 1
    stored = next(c for c in result["curves"] if c["objective"] == "mean")
    mean = next(t for t in fig["data"] if t["name"] == "mean")
    assert mean["y"] == pytest.approx([p["gold"] for p in stored["points"]])
    assert chart_args(at)["knob"] is None  # a λ knob needs the matrix
    assert at.title[0].value == "example run"
