"""The bad-input table: every option of `python -m backend run` x bad values, bad prompt files,
bad model folders, bad --db, --out and --scores, over the limits. Each exits 2 with a message
that names the option, before any work (no progress line, no cache, no output, no rows); the
New experiment form shows the same messages under the field."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from jobs_support import REPO, job_env

from backend.__main__ import COMMANDS
from backend.cli import OVERRIDES, main
from backend.config import ExperimentConfig
from tests.hf_support import build_zoo, write_prompts

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(autouse=True)
def own_data(tmp_path, monkeypatch):
    """A data folder per case, no database from the environment, and --db forgotten after."""
    from db.engine import set_url

    monkeypatch.setenv("GOODHART_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GOODHART_DB_URL", raising=False)
    yield tmp_path / "data"
    set_url(None)


def refused(capsys, argv: list[str], option: str) -> str:
    """Run argv in this process; assert exit 2, one 'error: OPTION: ...' line, no traceback, no
    progress; return the message."""
    code = main(argv, registrars=COMMANDS)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {option}: "), err
    assert "Traceback" not in err and "%]" not in err
    return lines[0]


def run_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--quiet", *extra, "--out", str(tmp_path / "out" / "r.json")]


# ---- every option x bad values -------------------------------------------------------------------


def bad_values(option: str) -> list[str]:
    """Values outside what an option takes, from its field's type and range."""
    dotted = OVERRIDES[option]
    stage, _, name = dotted.rpartition(".")
    owner = getattr(ExperimentConfig(), stage) if stage else ExperimentConfig()
    f = next(f for f in dataclasses.fields(owner) if f.name == name)
    kind, meta = type(f.default), f.metadata
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if choices:
        return ["bogus", "", "x" * 5000]
    if kind is str:
        return ["x" * 5000]
    values = ["abc", ""]
    if kind is int:
        values += ["1.5", "1e3"]
    else:
        values += ["nan", "inf", "-inf"]
    if lo is not None:
        values.append(str(lo - 1))
    if hi is not None:
        values += [str(hi + 1), str(10**30)]
    return values


CASES = [(o, v) for o in OVERRIDES for v in bad_values(o)]
CASES += [("--seed", v) for v in ("-1", "abc", str(2**31 + 1), "1.5")]
CASES += [("--preset", "nope"), ("--world", "bogus")]


@pytest.mark.parametrize(("option", "value"), CASES)
def test_every_option_refuses_bad_values_before_any_work(capsys, tmp_path, own_data, option, value):
    # hf options are checked in the hf world, toy options in the toy world
    world = ["--world", "hf"] if OVERRIDES.get(option, "").startswith("hf.") else []
    refused(capsys, run_args(tmp_path, *world, f"{option}={value}"), option)
    assert not (tmp_path / "out").exists() and not (own_data / "cache").exists()


def test_the_table_covers_every_option():
    assert {o for o, _ in CASES} >= set(OVERRIDES) | {"--seed", "--preset"}
    assert len(CASES) > 150


# ---- bad files ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    zoo = {**build_zoo(root), "prompts": write_prompts(root / "prompts.jsonl")}
    bad = root / "bad"
    bad.mkdir()
    files = {
        "binary.jsonl": bytes(range(256)) * 40,
        "latin1.jsonl": '{"instruction": "caf\xe9"}\n'.encode("latin-1"),
        "deep.jsonl": b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "deep-row.jsonl": b'{"instruction": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        "big-field.csv": b'instruction\n"' + b"x" * 200_000 + b'"\n',
        "nul.csv": b"instruction\na\x00b\n",
        "empty.jsonl": b"",
        "not-prompts.txt": b"hello\n",
    }
    for name, data in files.items():
        (bad / name).write_bytes(data)
    (bad / "folder.jsonl").mkdir()
    # Model folders: no tokenizer files; a cut-short safetensors file; garbage for a header.
    for name, damage in (("no-tokenizer", "tokenizer"), ("cut", "cut"), ("garbage", "garbage")):
        folder = bad / name
        shutil.copytree(zoo["gpt2"], folder)
        weights = folder / "model.safetensors"
        if damage == "tokenizer":
            for p in folder.iterdir():
                if p.name.startswith(("tokenizer", "special_tokens", "vocab", "merges")):
                    p.unlink()
        elif damage == "cut":
            weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        else:
            weights.write_bytes(b"\xff" * 64 + weights.read_bytes()[64:])
    zoo["bad"] = str(bad)
    return zoo


def hf_args(zoo, **changes) -> list[str]:
    opts = {"--policy": zoo["gpt2"], "--gold": zoo["deberta_gold"], "--proxy-base": zoo["neox"],
            "--prompt-file": zoo["prompts"], **changes}  # fmt: skip
    args = ["--world", "hf", "--device", "cpu", "--members", "2", "--pairs", "40"]
    return args + [x for kv in opts.items() for x in kv]


PROMPT_FILES = [
    ("binary.jsonl", "not UTF-8 text"),
    ("latin1.jsonl", "not UTF-8 text"),
    ("deep.jsonl", "nested too deeply"),
    ("deep-row.jsonl", "nested too deeply"),
    ("big-field.csv", "field larger than field limit"),
    ("nul.csv", "NUL"),
    ("empty.jsonl", "empty"),
    ("not-prompts.txt", ".jsonl, .json or .csv"),
    ("folder.jsonl", "no such file"),
    ("missing.jsonl", "no such file"),
    ("x" * 300 + ".jsonl", "not a usable file name"),
]


@pytest.mark.parametrize(("name", "words"), PROMPT_FILES)
def test_bad_prompt_files_exit_2_naming_the_option(capsys, tmp_path, zoo, name, words):
    path = str(Path(zoo["bad"]) / name)
    line = refused(capsys, run_args(tmp_path, *hf_args(zoo, **{"--prompt-file": path})),
                   "--prompt-file")  # fmt: skip
    assert words in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("model", "option", "words"),
    [
        ("x" * 5000, "--policy", "at most 4096 characters"),
        ("x" * 300, "--gold", "not a usable model id or folder"),
        ("a b c", "--proxy-base", "neither a local folder nor a model id"),
        ("bad/no-tokenizer", "--policy", "tokenizer has no vocabulary"),
        ("bad/cut", "--policy", "not a readable safetensors file"),
        ("bad/garbage", "--proxy-base", "not a readable safetensors file"),
        ("bad/missing", "--gold", "no such model folder"),
        ("bad/nul.csv", "--gold", "is a file"),
    ],
)
def test_bad_models_exit_2_at_submission(capsys, tmp_path, zoo, model, option, words):
    if model.startswith("bad/"):
        model = str(Path(zoo["bad"]) / model[4:])
    line = refused(capsys, run_args(tmp_path, *hf_args(zoo, **{option: model})), option)
    assert words in line


def test_a_best_of_n_run_on_few_prompts_is_not_refused_for_ppo(tmp_path, zoo):
    """Best-of-n needs no held-out prompts: 3 prompts is fine (PPO holds out 5 by default)."""
    from backend.config import ConfigError
    from backend.worlds.registry import check_world

    cfg = ExperimentConfig(world="hf", method="bon").replace(
        **{"hf.policy": zoo["gpt2"], "hf.gold": zoo["deberta_gold"], "hf.proxy_base": zoo["neox"],
           "hf.prompt_file": zoo["prompts"], "hf.max_prompts": 3, "bon.num_prompts": 3}
    )  # fmt: skip
    assert check_world(cfg) is cfg
    with pytest.raises(ConfigError) as e:
        check_world(cfg.replace(method="ppo"))
    assert e.value.option == "ppo.eval_prompts"


# ---- --device, --out, --scores, the admission limits ---------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_run_on_cuda_without_a_gpu(capsys, tmp_path):
    line = refused(capsys, run_args(tmp_path, "--device", "cuda"), "--device")
    assert "sees no CUDA device" in line


@pytest.mark.parametrize(
    ("option", "target", "words"),
    [
        ("--out", "/proc/nope/r.json", "cannot be created"),
        ("--out", "/sys/r.json", "cannot be created"),
        ("--out", "{tmp}", "is a folder"),
        ("--out", "{tmp}/" + "x" * 300 + "/r.json", "not a usable path"),
        ("--scores", "/proc/nope/s.npz", "cannot be created"),
        ("--scores", "{tmp}", "is a folder"),
    ],
)
def test_unwritable_out_and_scores_exit_2_before_the_run(capsys, tmp_path, option, target, words):
    target = target.format(tmp=tmp_path)
    argv = ["run", "--quiet", "--out", str(tmp_path / "r.json"), option, target]
    if option == "--out":
        argv = ["run", "--quiet", "--out", target]
    assert words in refused(capsys, argv, option)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--num-prompts", "10000", "--samples", "65536"], "--samples"),
        (["--pairs", "1000000", "--members", "16", "--rm-epochs", "100"], "--pairs"),
        (["--preset", "toy-ppo", "--steps", "100000"], "--steps"),
    ],
)
def test_runs_over_the_admission_limits_are_refused(capsys, tmp_path, args, option):
    assert "one submission may need at most" in refused(capsys, run_args(tmp_path, *args), option)


def test_every_preset_and_the_full_reproduction_are_admitted():
    from backend.admission import check_admission
    from backend.presets import PRESETS
    from backend.reproduce.plan import plan

    for _, cfg in PRESETS.values():
        check_admission(cfg)
    for spec in plan(3, "full"):
        check_admission(spec.config)


# ---- --db ----------------------------------------------------------------------------------------


def db_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    not_db = tmp_path / "notes.sqlite3"
    not_db.write_text("not a database\n" * 20)
    folder = tmp_path / "folder.db"
    folder.mkdir()
    typo = str(tmp_path / "lab.sqlit3")
    return [
        (["list", "--db", "mysql://u:p@localhost/x"], "driver of mysql URLs is not installed"),
        (["list", "--db", str(not_db)], "is not a SQLite database"),
        (["submit", "--db", str(not_db)], "is not a SQLite database"),
        (["list", "--db", str(folder)], "is a folder"),
        (["worker", "--db", str(folder)], "is a folder"),
        (["submit", "--db", "/proc/nope/lab.db"], "not writable"),
        (["submit", "--db", "sqlite://"], "in-memory SQLite database"),
        (["submit", "--db", "sqlite:///"], "in-memory SQLite database"),
        (["worker", "--db", "sqlite:///:memory:"], "in-memory SQLite database"),
        (["list", "--db", typo], "there is no database at"),
        (["show", "abcdefghijkm", "--db", typo], "there is no database at"),
        (["cancel", "abcdefghijkm", "--db", typo], "there is no database at"),
        (["export", "abcdefghijkm", "--db", typo], "there is no database at"),
        (["list", "--db", "nonsense://"], "not a database URL"),
        (["list", "--db", "postgresql://u:p@127.0.0.1:9/x"], "cannot open"),
    ]


def test_bad_databases_exit_2_naming_db(capsys, tmp_path):
    for argv, words in db_cases(tmp_path):
        line = refused(capsys, argv, "--db")
        assert words in line, (argv, line)
    assert not (tmp_path / "lab.sqlit3").exists()  # the mistyped path was not created


def test_foreign_databases_and_unreachable_queues(capsys, tmp_path, monkeypatch, zoo):
    import sqlite3

    foreign = tmp_path / "places.sqlite"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE bookmarks (url TEXT)")
    for command in (["list"], ["submit"], ["worker"]):
        line = refused(capsys, [*command, "--db", str(foreign)], "--db")
        assert "another program's tables" in line
    with sqlite3.connect(foreign) as con:  # left as it was
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert tables == {"bookmarks"}
    db = str(tmp_path / "lab.db")
    binary = str(Path(zoo["bad"]) / "binary.jsonl")
    line = refused(capsys, ["submit", "--db", db, *hf_args(zoo, **{"--prompt-file": binary})],
                   "--prompt-file")  # fmt: skip
    assert "not UTF-8" in line
    for url in ("redis://127.0.0.1:9/0", "nonsense"):
        monkeypatch.setenv("GOODHART_REDIS_URL", url)
        for command in (["submit"], ["worker"]):
            line = refused(capsys, [*command, "--db", db], "GOODHART_REDIS_URL")
            assert "job queue cannot be reached" in line
    monkeypatch.delenv("GOODHART_REDIS_URL")
    assert json.loads(_ok(capsys, ["list", "--json", "--db", db])) == []  # nothing stored


def test_list_limit_and_long_names(capsys, tmp_path):
    db = str(tmp_path / "lab.db")
    assert "between 1 and" in refused(capsys, ["list", "--limit", str(10**30), "--db", db],
                                      "--limit")  # fmt: skip
    assert "at most 200" in refused(capsys, ["submit", "--name", "n" * 5000, "--db", db], "--name")
    assert json.loads(_ok(capsys, ["list", "--json", "--db", db])) == []


def _ok(capsys, argv):
    assert main(argv, registrars=COMMANDS) == 0
    return capsys.readouterr().out


# ---- the same through the real command line ------------------------------------------------------


def test_the_real_command_line_exits_2_without_a_traceback(tmp_path, zoo):
    env = job_env(tmp_path / "data")
    binary = str(Path(zoo["bad"]) / "binary.jsonl")
    for args, option in [
        (["submit", "--db", "sqlite://"], "--db"),
        (["run", "--out", "/proc/nope/r.json"], "--out"),
        (["run", *hf_args(zoo, **{"--prompt-file": binary}), "--out", str(tmp_path / "r")],
         "--prompt-file"),
        (["list", "--db", str(tmp_path / "typo.db")], "--db"),
    ]:  # fmt: skip
        p = subprocess.run([sys.executable, "-m", "backend", *args], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert p.returncode == 2 and p.stderr.startswith(f"error: {option}: "), p.stderr
        assert "Traceback" not in p.stderr


# ---- the New experiment form: the same checks under the field ----------------------------------


def test_the_form_shows_the_same_messages_under_the_field(tmp_path, monkeypatch, zoo):
    from tests.app_support import no_exceptions, open_page, use_temp_db

    use_temp_db(tmp_path, monkeypatch)
    at = open_page("views/new_experiment.py")
    at.number_input(key="f_bon.num_prompts").set_value(10_000).run()
    at.number_input(key="f_bon.samples").set_value(65_536).run()
    (err,) = at.error
    assert "one submission may need at most" in err.value and at.button(key="submit").disabled
    at.number_input(key="f_bon.samples").set_value(64).run()
    assert not at.error
    at.selectbox(key="f_world").set_value("hf").run()
    at.text_input(key="f_hf.policy").set_value("x" * 5000).run()
    assert "at most 4096 characters" in at.error[0].value  # as you type
    for key, value in [("policy", zoo["gpt2"]), ("gold", zoo["deberta_gold"]),
                       ("proxy_base", zoo["neox"]),
                       ("prompt_file", str(Path(zoo["bad"]) / "binary.jsonl"))]:  # fmt: skip
        at.text_input(key=f"f_hf.{key}").set_value(value).run()
    at.number_input(key="f_bon.num_prompts").set_value(4).run()
    assert not at.error
    at.button(key="submit").click().run()
    no_exceptions(at)
    (err,) = at.error
    assert "not UTF-8 text" in err.value
    at.text_input(key="f_hf.prompt_file").set_value(zoo["prompts"]).run()
    at.text_input(key="f_hf.policy").set_value(str(Path(zoo["bad"]) / "no-tokenizer")).run()
    at.button(key="submit").click().run()
    no_exceptions(at)
    (err,) = at.error
    assert "tokenizer has no vocabulary" in err.value
