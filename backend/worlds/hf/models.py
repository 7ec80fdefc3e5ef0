"""Loading Hugging Face models for the hf world, safely and with messages a user can act on.

- A model is a local folder or a model id. A model id is looked up in the local Hugging Face
  cache; with HF_HUB_OFFLINE=1 (or no cached copy and no network) it fails at once with a
  ConfigError naming --policy, --gold or --proxy-base instead of a stack trace.
- Weights load from safetensors, or from .bin files with torch's weights_only loading
  (transformers' default, passed explicitly here); never as arbitrary pickles, and never with
  trust_remote_code.
- Tokenizers get a pad token when they have none (EOS, else UNK), generation pads on the left,
  reward models pad on the right and use their own tokenizer.
- Reward-model batches halve on CUDA out-of-memory (backend.batching.AdaptiveBatch) instead of
  crashing.
Shapes: B rows.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from backend.batching import AdaptiveBatch
from backend.config import HF_MODEL_REQUIRED, ConfigError, HfWorldConfig
from backend.worlds.base import inside

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


# ---- where a model lives -------------------------------------------------------------------------


def offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now (the hub library reads it at import)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return env.strip().lower() in ("1", "true", "yes", "on") or bool(constants.HF_HUB_OFFLINE)


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.sep in name.strip("/").replace("/", "", 1)


def locate(name: str, option: str) -> tuple[str, bool]:
    """(where to load from, whether only local files may be used). ConfigError naming `option`
    for an empty name, a missing folder, a folder that is not a model, or a model id that is not
    cached while offline."""
    if not name:
        raise ConfigError(option, HF_MODEL_REQUIRED)
    path = Path(name).expanduser()
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except (OSError, ValueError) as e:  # a name too long for a path, a NUL byte
        raise ConfigError(option, f"not a usable model id or folder ({_why(e)})") from None
    if is_dir:
        if not (path / "config.json").is_file():
            raise ConfigError(option, f"{name} is a folder but not a model (it has no config.json)")
        weights = [p for p in path.iterdir() if p.name.endswith(WEIGHT_SUFFIXES)]
        if not weights:
            raise ConfigError(
                option, f"{name} has a config.json but no weights (.safetensors or .bin)"
            )
        return str(path.resolve()), True
    if exists:
        raise ConfigError(option, f"{name} is a file; give the model's folder or a model id")
    if _looks_like_path(name):
        raise ConfigError(option, f"no such model folder: {name}")
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError as e:  # the hub's validation of a model id ("a/b/c", "..", spaces)
        raise ConfigError(
            option, f"{name!r} is neither a local folder nor a model id ({e})"
        ) from None
    if isinstance(cached, str):
        return name, True
    if offline() or not hub_reachable():
        why = "offline (HF_HUB_OFFLINE=1)" if offline() else "from this machine (no network)"
        raise ConfigError(
            option,
            f"{name!r} is not a local folder and not in the Hugging Face cache, and the hub "
            f"cannot be reached {why}: download it first (`hf download {name}`) or give a "
            "local folder",
        )
    return name, False


def _why(e: BaseException) -> str:
    """An OS error's reason without the path it names (the user typed that)."""
    return getattr(e, "strerror", None) or str(e).split(":")[0]


def model_folder(name: str, option: str) -> Path | None:
    """The folder holding a model's files: the local folder, or a cached model id's snapshot
    (None for a model id that is not cached)."""
    where, local_only = locate(name, option)
    if Path(where).is_dir():
        return Path(where)
    if not local_only:
        return None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    return Path(cached).parent if isinstance(cached, str) else None


_MODEL_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")


def outside_message(allowed: Sequence[Path]) -> str:
    where = ", ".join(map(str, allowed)) or "none are configured"
    return (
        "this server is shared, so it reads only files under its allowed folders "
        f"(GOODHART_ALLOWED_DIRS: {where})"
    )


def check_allowed(name: str, option: str, allowed: Sequence[Path]) -> None:
    """A model of a shared server: a folder under `allowed`, or a model id already in the
    Hugging Face cache (nothing is downloaded for a visitor). Decided from the name and the
    allowed folders alone, so a refusal says nothing about what exists elsewhere."""
    if not name or inside(name, allowed):
        return
    if _looks_like_path(name) or not _MODEL_ID.fullmatch(name) or ".." in name:
        raise ConfigError(option, outside_message(allowed))
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(name, "config.json"), str):
        raise ConfigError(
            option,
            f"{name!r} is not in this server's Hugging Face cache; a shared server downloads "
            "nothing (give a model folder under its allowed folders)",
        )


_REACHABLE: dict[str, tuple[float, bool]] = {}


def hub_reachable(timeout: float = 3.0, ttl: float = 60.0) -> bool:
    """Whether the hub's host accepts a connection (asked at most once a minute). Without this
    a model id that is not cached waits through the hub client's retries (about a minute) before
    failing on a machine without network."""
    import socket
    import time
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = (
        url.hostname or "huggingface.co",
        url.port or (443 if url.scheme == "https" else 80),
    )
    now = time.monotonic()
    seen = _REACHABLE.get(host)
    if seen is None or now - seen[0] > ttl:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            seen = (now, True)
        except OSError:
            seen = (now, False)
        _REACHABLE[host] = seen
    return seen[1]


def identity(name: str) -> dict:
    """What identifies a model's files, for artifact cache keys: a local folder's files with
    their sizes and change times, or a model id with its cached revision."""
    path = Path(name).expanduser()
    if path.is_dir():
        files = sorted(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file()
        )
        return {"folder": str(path.resolve()), "files": files}
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    revision = Path(cached).parent.name if isinstance(cached, str) else None
    return {"id": name, "revision": revision}


# transformers builds a model under process-wide switches (its logging verbosity, the default
# device and init functions it patches while weights load), so two threads loading at once (the
# engine trains members side by side) can each see the other's: one load at a time.
_LOADING = threading.RLock()


@contextlib.contextmanager
def _load_errors(name: str, option: str):
    """Turn what loading raises (missing files, unreachable hub, bad weights) into ConfigError;
    one load at a time (_LOADING)."""
    from transformers.utils import logging as hf_logging

    with _LOADING:
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialized head" notes are expected here
        hf_logging.disable_progress_bar()
        try:
            yield
        except ConfigError:
            raise
        except pickle.UnpicklingError:
            raise ConfigError(
                option,
                f"{name}: its weights are a pickle that torch's weights_only loading refuses; "
                "convert them to safetensors (arbitrary pickles are never loaded)",
            ) from None
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            if isinstance(e, torch.cuda.OutOfMemoryError):
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(option, f"cannot load {name!r}: {first}") from e
        finally:
            hf_logging.set_verbosity(level)
            hf_logging.enable_progress_bar()


@lru_cache(maxsize=64)
def _config(name: str, local_only: bool, stamp: str):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(name, local_files_only=local_only)


def model_config(name: str, option: str):
    """The model's transformers config (cheap: config.json only)."""
    where, local_only = locate(name, option)
    with _load_errors(name, option):
        return _config(where, local_only, str(identity(name)))


def _is_classifier_type(config) -> bool:
    from transformers import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    return type(config) in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING


def check_gold(config, name: str) -> None:
    """The gold must be a sequence classifier with exactly one output (a reward)."""
    archs = config.architectures or []
    is_classifier = any(a.endswith("ForSequenceClassification") for a in archs)
    if not is_classifier or config.num_labels != 1:
        what = f"{name} is not a one-label sequence-classification reward model"
        detail = f"architectures {archs or 'unknown'}, {config.num_labels} labels"
        raise ConfigError("--gold", f"{what} ({detail})", public=what)
    if not _is_classifier_type(config):
        raise ConfigError("--gold", f"{name}: transformers has no classifier for this model")


def _check_causal_lm(config, name: str) -> None:
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise ConfigError("--policy", f"{name} is a {config.model_type} model, not a causal LM")


def check_models(cfg: HfWorldConfig) -> None:
    """Everything about the three models that can be checked without loading weights: found,
    are models, the gold has one label, the policy is a causal LM. Raises ConfigError naming
    the option."""
    models = ((cfg.policy, "--policy"), (cfg.gold, "--gold"), (cfg.proxy_base, "--proxy-base"))
    for name, option in models:
        if not locate(name, option)[1]:
            continue  # an uncached model id while online: checked when it is downloaded
        config = model_config(name, option)
        if option == "--gold":
            check_gold(config, name)
        elif option == "--policy":
            _check_causal_lm(config, name)
        elif option == "--proxy-base" and not _is_classifier_type(config):
            raise ConfigError(
                option, f"{name} ({config.model_type}) cannot load as a sequence classifier"
            )


def check_weights(folder: Path, name: str, option: str) -> None:
    """Every safetensors file of a model folder has a readable header that covers the file (a
    truncated or overwritten file fails here, at submission, instead of in the worker)."""
    from safetensors import SafetensorError, safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), "pt") as fh:
                fh.keys()
        except (SafetensorError, OSError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(
                option, f"{name}: {path.name} is not a readable safetensors file ({first})"
            ) from None


PROBE_TEXT = "Hello world, this is a short test sentence with 3 numbers: 12 and 45."


def check_tokenizer(name: str, option: str, config) -> None:
    """The model's tokenizer loads, has a vocabulary (transformers builds an empty one from a
    folder without tokenizer files) and fits the model's embeddings."""
    tok = load_tokenizer(name, option, "right")
    ids = tok(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    if not ids or set(ids) <= set(tok.all_special_ids):
        raise ConfigError(
            option,
            f"{name}: its tokenizer has no vocabulary (the folder has no tokenizer files, "
            "e.g. tokenizer.json)",
        )
    vocab = getattr(config, "vocab_size", None)
    if vocab and len(tok) > vocab:
        raise ConfigError(
            option, f"{name}: its tokenizer has {len(tok)} tokens, the model only {vocab}"
        )
    if option == "--policy" and tok.eos_token_id is None:
        raise ConfigError(option, f"{name}: the tokenizer has no EOS token")


def check_files(cfg: HfWorldConfig) -> None:
    """The models' weight files and tokenizers, as far as they are on this machine (once per
    submission: it loads the three tokenizers)."""
    models = ((cfg.policy, "--policy"), (cfg.gold, "--gold"), (cfg.proxy_base, "--proxy-base"))
    for name, option in models:
        folder = model_folder(name, option)
        if folder is None:
            continue  # an uncached model id while online: checked when it is downloaded
        check_weights(folder, name, option)
        check_tokenizer(name, option, model_config(name, option))


# ---- loading -------------------------------------------------------------------------------------


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """auto: bfloat16 on a CUDA device that supports it, float32 otherwise."""
    if name == "bfloat16" or (
        name == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    ):
        return torch.bfloat16
    return torch.float32


def load_tokenizer(name: str, option: str, padding_side: str):
    """The model's tokenizer with a pad token (EOS, else UNK, when it has none)."""
    from transformers import AutoTokenizer

    where, local_only = locate(name, option)
    with _load_errors(name, option):
        tok = AutoTokenizer.from_pretrained(where, local_files_only=local_only)
    if tok.pad_token is None:
        if tok.eos_token is not None:
            tok.pad_token = tok.eos_token
        elif tok.unk_token is not None:
            tok.pad_token = tok.unk_token
        else:
            raise ConfigError(option, f"{name}: the tokenizer has no pad, EOS or UNK token")
    tok.padding_side = padding_side
    tok.truncation_side = "left"  # keep the end of a long prompt (where the question is)
    return tok


def _load_kwargs(dtype: torch.dtype) -> dict:
    """dtype and weights_only under the names this transformers release knows (GPU images may
    carry an older one: `torch_dtype` before 4.56; weights_only is then torch's own default)."""
    import inspect

    import transformers
    from packaging.version import Version

    new = Version(transformers.__version__) >= Version("4.56")
    params = inspect.signature(transformers.PreTrainedModel.from_pretrained).parameters
    kwargs = {"dtype" if new else "torch_dtype": dtype}
    if "weights_only" in params:
        kwargs["weights_only"] = True
    return kwargs


def _load(auto_cls, name: str, option: str, dtype: torch.dtype, device, **kwargs):
    where, local_only = locate(name, option)
    with _load_errors(name, option):
        model = auto_cls.from_pretrained(
            where, local_files_only=local_only, **_load_kwargs(dtype), **kwargs
        )
    return model.to(device).eval()


def load_policy(cfg: HfWorldConfig, tokenizer, device: torch.device):
    """The policy: a causal LM, pad id set from its (padded) tokenizer."""
    from transformers import AutoModelForCausalLM

    _check_causal_lm(model_config(cfg.policy, "--policy"), cfg.policy)
    dtype = resolve_dtype(cfg.policy_dtype, device)
    model = _load(AutoModelForCausalLM, cfg.policy, "--policy", dtype, device)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def load_gold(cfg: HfWorldConfig, tokenizer, device: torch.device):
    """The gold reward model: a one-label sequence classifier, frozen."""
    from transformers import AutoModelForSequenceClassification

    check_gold(model_config(cfg.gold, "--gold"), cfg.gold)
    dtype = resolve_dtype(cfg.gold_dtype, device)
    model = _load(AutoModelForSequenceClassification, cfg.gold, "--gold", dtype, device)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.requires_grad_(False)


def load_proxy_base(cfg: HfWorldConfig, tokenizer, device: torch.device, seed: int):
    """A proxy: the proxy base as a one-label classifier whose head (every module outside the
    backbone) is newly initialized from `seed`, even when the base already has a head: members
    differ by head init and data order only (Coste et al.). Float32: it is trained."""
    from transformers import AutoModelForSequenceClassification

    model = _load(
        AutoModelForSequenceClassification, cfg.proxy_base, "--proxy-base", torch.float32, device,
        num_labels=1, ignore_mismatched_sizes=True,
    )  # fmt: skip
    model.config.pad_token_id = tokenizer.pad_token_id
    std = getattr(model.config, "initializer_range", None) or 0.02
    gen = torch.Generator().manual_seed(seed)  # the same stream torch.manual_seed(seed) gives
    with torch.no_grad():
        for child_name, child in model.named_children():
            if child_name == model.base_model_prefix:
                continue
            for m in child.modules():
                if isinstance(m, torch.nn.Linear):
                    init = torch.empty_like(m.weight, device="cpu").normal_(0.0, std, generator=gen)
                    m.weight.copy_(init)
                    if m.bias is not None:
                        torch.nn.init.zeros_(m.bias)
                elif isinstance(m, torch.nn.LayerNorm):
                    m.reset_parameters()
    return model


# ---- scoring text with a reward model ------------------------------------------------------------


def encode_pairs(tokenizer, prompts: list[str], answers: list[str], max_tokens: int, device):
    """(prompt, answer) as the tokenizer's text pair, right-padded, cut to max_tokens
    (longest part first, from the left)."""
    enc = tokenizer(
        prompts, answers, padding=True, truncation="longest_first", max_length=max_tokens,
        return_tensors="pt",
    )  # fmt: skip
    return {k: v.to(device) for k, v in enc.items()}


def reward(
    model, tokenizer, prompts: list[str], answers: list[str], max_tokens: int
) -> torch.Tensor:
    """One reward model's raw scores of B (prompt, answer) texts: (B,) float32, with grad when
    grad is enabled."""
    device = next(model.parameters()).device
    enc = encode_pairs(tokenizer, prompts, answers, max_tokens, device)
    return model(**enc).logits[:, 0].float()


@torch.no_grad()
def score_texts(
    model, tokenizer, prompts: list[str], answers: list[str], max_tokens: int, batch: AdaptiveBatch
) -> np.ndarray:
    """Raw scores of B texts in memory-adaptive batches: (B,) float64."""
    parts = batch.map(
        lambda a, b: reward(model, tokenizer, prompts[a:b], answers[a:b], max_tokens).cpu(),
        len(prompts),
    )
    return torch.cat(parts).numpy().astype(np.float64) if parts else np.zeros(0)
