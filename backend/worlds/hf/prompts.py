"""Prompts of the Hugging Face world: rows of a JSONL or CSV file (or a `datasets` split), one
column picked, put into a prompt template.

Templates: "alpaca" is AlpacaFarm's (with its "### Input:" variant for rows that have a non-empty
`input` column), "none" is the text as it is, any other text must contain "{prompt}". "auto"
means alpaca for an `instruction` column (instruction data) and none otherwise.
Every problem a user can meet is a ConfigError naming the CLI option.
"""

from __future__ import annotations

import csv
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from backend.config import HF_PROMPTS_REQUIRED, HF_PROMPTS_TWICE, ConfigError, HfWorldConfig

ALPACA = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{prompt}\n\n### Response:"
)
ALPACA_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
    "{prompt}\n\n### Input:\n{input}\n\n### Response:"
)


def template_name(cfg: HfWorldConfig) -> str:
    """The template in effect: alpaca, none, or the custom text."""
    if cfg.template == "auto":
        return "alpaca" if cfg.prompt_field == "instruction" else "none"
    return cfg.template


def apply_template(template: str, text: str, extra: str = "") -> str:
    """The prompt the policy sees. `extra` is the row's `input` column (AlpacaFarm)."""
    if template == "none":
        return text
    if template == "alpaca":
        if extra.strip():
            return ALPACA_INPUT.replace("{prompt}", text).replace("{input}", extra)
        return ALPACA.replace("{prompt}", text)
    return template.replace("{prompt}", text)


MAX_FILE_BYTES = 1 << 30  # a prompt file larger than 1 GiB is a mistake, not a prompt set


def _file_rows(path: Path, field: str) -> list[tuple[str, str]]:
    """(prompt, input) of every row of a .jsonl/.json or .csv file. What a bad file gives (not
    UTF-8, binary, nested too deeply, a field over the csv module's limit) is a ConfigError that
    quotes nothing of the file's contents."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv"):
        raise ConfigError("--prompt-file", f"{path}: expected a .jsonl, .json or .csv file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError("--prompt-file", f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        with path.open(encoding="utf-8", newline="" if suffix == ".csv" else None) as fh:
            return _csv_rows(fh, path, field) if suffix == ".csv" else _jsonl_rows(fh, path, field)
    except UnicodeDecodeError as e:
        raise ConfigError(
            "--prompt-file", f"{path}: not UTF-8 text (byte {e.start} cannot be decoded)"
        ) from None
    except csv.Error as e:  # "field larger than field limit (131072)", "line contains NUL"
        raise ConfigError("--prompt-file", f"{path}: not a readable CSV file ({e})") from None
    except OSError as e:
        raise ConfigError("--prompt-file", f"{path}: cannot be read ({e.strerror})") from None


def _jsonl_rows(fh, path: Path, field: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for n, line in enumerate(fh, start=1):
        if "\0" in line:
            raise ConfigError("--prompt-file", f"{path}: line {n} holds NUL bytes (a binary file?)")
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(
                "--prompt-file", f"{path}: line {n} is not valid JSON ({e.msg})"
            ) from None
        except RecursionError:
            raise ConfigError("--prompt-file", f"{path}: line {n} is nested too deeply") from None
        if not isinstance(row, dict):
            raise ConfigError("--prompt-file", f"{path}: line {n} is not a JSON object")
        rows.append(_row_prompt(row, field, f"{path}: line {n}"))
    return rows


def _csv_rows(fh, path: Path, field: str) -> list[tuple[str, str]]:
    reader = csv.DictReader(fh)
    if reader.fieldnames and field not in reader.fieldnames:
        raise ConfigError(
            "--prompt-field",
            f"{path} has no column {field!r}; its columns: {', '.join(reader.fieldnames)}",
            public=f"{path} has no column {field!r}",
        )
    return [_row_prompt(row, field, f"{path}: line {n}") for n, row in enumerate(reader, start=2)]


def _row_prompt(row: dict, field: str, where: str) -> tuple[str, str]:
    if field not in row:
        fields = ", ".join(map(str, row)) or "none"
        raise ConfigError(
            "--prompt-field",
            f"{where} has no field {field!r}; its fields: {fields}",
            public=f"{where} has no field {field!r}",
        )
    text = row[field]
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("--prompt-file", f"{where}: field {field!r} is empty or not text")
    if "\0" in text:
        raise ConfigError("--prompt-file", f"{where}: field {field!r} holds NUL bytes")
    extra = row.get("input") or ""
    return text, extra if isinstance(extra, str) else ""


def _dataset_rows(name: str, split: str, field: str) -> list[tuple[str, str]]:
    try:
        import datasets

        ds = datasets.load_dataset(name, split=split)
    except Exception as e:  # datasets raises many types (offline, bad split, bad name)
        where = f"cannot load {name!r} split {split!r}"
        raise ConfigError("--dataset", f"{where}: {e}", public=where) from None
    if field not in ds.column_names:
        cols = ", ".join(ds.column_names)
        raise ConfigError(
            "--prompt-field",
            f"{name} has no column {field!r}; its columns: {cols}",
            public=f"{name} has no column {field!r}",
        )
    inputs = ds["input"] if "input" in ds.column_names else [""] * len(ds)
    return [
        _row_prompt({field: t, "input": x}, field, f"{name}[{split}] row {i}")
        for i, (t, x) in enumerate(zip(ds[field], inputs, strict=True))
    ]


@lru_cache(maxsize=32)
def _cached(source: tuple, field: str, template: str, max_prompts: int) -> tuple[str, ...]:
    """Templated prompts of a source; a file's size and change time are part of `source`, so an
    edited file is read again."""
    if source[0] == "file":
        rows, where, option = _file_rows(Path(source[1]), field), source[1], "--prompt-file"
    else:
        rows, where, option = _dataset_rows(source[1], source[2], field), source[1], "--dataset"
    if not rows:
        raise ConfigError(option, f"{where}: empty, no prompts in it")
    if max_prompts:
        rows = rows[:max_prompts]
    return tuple(apply_template(template, text, extra) for text, extra in rows)


def prompt_source(cfg: HfWorldConfig) -> tuple:
    """What identifies the prompts: the file with its size and change time, or dataset + split."""
    if cfg.prompt_file and cfg.dataset:
        raise ConfigError("--prompt-file", HF_PROMPTS_TWICE)
    if cfg.dataset:
        return ("dataset", cfg.dataset, cfg.split)
    if not cfg.prompt_file:
        raise ConfigError("--prompt-file", HF_PROMPTS_REQUIRED)
    path = Path(cfg.prompt_file).expanduser()
    try:
        is_file = path.is_file()
    except (OSError, ValueError) as e:  # a name too long for a path, a NUL byte
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError("--prompt-file", f"not a usable file name ({reason})") from None
    if not is_file:
        raise ConfigError("--prompt-file", f"no such file: {cfg.prompt_file}")
    st = path.stat()
    return ("file", str(path.resolve()), st.st_size, st.st_mtime_ns)


def load_prompts(cfg: HfWorldConfig) -> list[str]:
    """The world's prompts, templated, in file order. Raises ConfigError naming the option."""
    name = template_name(cfg)
    if name not in ("alpaca", "none") and "{prompt}" not in name:
        raise ConfigError("--template", 'must be auto, alpaca, none, or text with "{prompt}"')
    return list(_cached(prompt_source(cfg), cfg.prompt_field, name, cfg.max_prompts))


def prompts_key(cfg: HfWorldConfig) -> str:
    """A hash of the templated prompts themselves (for artifact cache keys)."""
    h = hashlib.sha256()
    for p in load_prompts(cfg):
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
