"""Prompts of the hf world: JSONL and CSV files, templates, a `datasets` folder, and every error a
user meets with a prompt file (each a ConfigError naming the option)."""

from __future__ import annotations

import json

import pytest

from backend.config import ConfigError, HfWorldConfig
from backend.worlds.hf.prompts import ALPACA, load_prompts, prompts_key


def cfg(path, **kw) -> HfWorldConfig:
    return HfWorldConfig(prompt_file=str(path), **kw)


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_jsonl_instruction_rows_get_the_alpacafarm_template(tmp_path):
    f = tmp_path / "p.jsonl"
    write_jsonl(
        f, [{"instruction": "List 2 fruits.", "input": ""}, {"instruction": "Sum", "input": "1 2"}]
    )
    p = load_prompts(cfg(f))
    assert p[0] == ALPACA.replace("{prompt}", "List 2 fruits.")
    assert p[0].endswith("### Instruction:\nList 2 fruits.\n\n### Response:")
    assert "### Instruction:\nSum\n\n### Input:\n1 2\n\n### Response:" in p[1]
    assert "paired with an input" in p[1]


def test_other_columns_are_raw_by_default_and_templates_apply(tmp_path):
    f = tmp_path / "p.jsonl"
    write_jsonl(f, [{"question": "Why?"}, {"question": "How?"}])
    assert load_prompts(cfg(f, prompt_field="question")) == ["Why?", "How?"]
    custom = load_prompts(cfg(f, prompt_field="question", template="Q: {prompt}\nA:"))
    assert custom == ["Q: Why?\nA:", "Q: How?\nA:"]
    alpaca = load_prompts(cfg(f, prompt_field="question", template="alpaca"))
    assert alpaca[1] == ALPACA.replace("{prompt}", "How?")
    assert load_prompts(cfg(f, prompt_field="question", max_prompts=1)) == ["Why?"]


def test_csv_with_a_chosen_column(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text('id,text\n1,"Hello, world"\n2,Second line\n')
    assert load_prompts(cfg(f, prompt_field="text")) == ["Hello, world", "Second line"]
    with pytest.raises(ConfigError) as e:
        load_prompts(cfg(f, prompt_field="prompt"))
    assert e.value.option == "--prompt-field" and "its columns: id, text" in e.value.message


def test_an_edited_file_is_read_again_and_changes_the_key(tmp_path):
    f = tmp_path / "p.jsonl"
    write_jsonl(f, [{"prompt": "a"}])
    c = cfg(f, prompt_field="prompt")
    key = prompts_key(c)
    write_jsonl(f, [{"prompt": "a"}, {"prompt": "b"}])
    assert load_prompts(c) == ["a", "b"]
    assert prompts_key(c) != key


@pytest.mark.parametrize(
    "content, option, words",
    [
        ("", "--prompt-file", "empty"),
        ("\n\n", "--prompt-file", "empty"),
        (
            '{"instruction": "ok"}\n{"instruction": "broken"\n',
            "--prompt-file",
            "line 2 is not valid",
        ),
        ('["a list"]\n', "--prompt-file", "line 1 is not a JSON object"),
        ('{"prompt": "wrong column"}\n', "--prompt-field", "no field 'instruction'"),
        ('{"instruction": ""}\n', "--prompt-file", "empty or not text"),
        ('{"instruction": 3}\n', "--prompt-file", "empty or not text"),
    ],
)
def test_bad_jsonl_files_are_clear_errors(tmp_path, content, option, words):
    f = tmp_path / "p.jsonl"
    f.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_prompts(cfg(f))
    assert e.value.option == option and words in e.value.message


def test_missing_file_wrong_kind_and_bad_template(tmp_path):
    cases = [
        (HfWorldConfig(), "--prompt-file", "needs prompts"),
        (cfg(tmp_path / "nope.jsonl"), "--prompt-file", "no such file"),
        (cfg(tmp_path), "--prompt-file", "no such file"),
        (HfWorldConfig(prompt_file="x.jsonl", dataset="y"), "--prompt-file", "not both"),
    ]
    txt = tmp_path / "p.txt"
    txt.write_text("hello\n")
    cases.append((cfg(txt), "--prompt-file", ".jsonl, .json or .csv"))
    good = tmp_path / "p.jsonl"
    write_jsonl(good, [{"instruction": "x"}])
    cases.append((cfg(good, template="no placeholder"), "--template", "{prompt}"))
    for c, option, words in cases:
        with pytest.raises(ConfigError) as e:
            load_prompts(c)
        assert (e.value.option, words in e.value.message) == (option, True), e.value


def test_a_datasets_folder_with_a_split(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"instruction": f"task {i}"} for i in range(5)])
    c = HfWorldConfig(dataset=str(folder), split="train", template="none")
    assert load_prompts(c) == [f"task {i}" for i in range(5)]
    with pytest.raises(ConfigError) as e:
        load_prompts(HfWorldConfig(dataset=str(folder), split="nosuchsplit"))
    assert e.value.option == "--dataset"
