"""One config dataclass per stage, validated in one place. The CLI and the web form build these.

Every field carries a one-line doc and, where it has one, its allowed range and CLI option; the
range check (`validate`) and the error messages are generated from that metadata, so the CLI, the
app and the docs cannot disagree about what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

METHODS = ("bon", "ppo", "dpo")
DIVERSITIES = ("finetune", "bootstrap", "independent", "pretrain")
OBJECTIVES = ("single", "mean", "wco", "uwo")
DEVICES = ("auto", "cpu", "cuda")
DPO_LOSS_NAMES = {"dpo": "DPO", "ipo": "IPO", "slic": "SLiC"}  # --dpo-loss -> its name
DPO_LOSSES = tuple(DPO_LOSS_NAMES)


MAX_TEXT = 4096  # longest text field (a model name, a path, a template), in characters


class ConfigError(ValueError):
    """A config value outside its allowed range. `option` is the CLI flag (or field path).
    `public` is the message without anything read from the server's files (a CSV's columns,
    a JSONL row's keys): what a visitor of a shared server is shown."""

    def __init__(self, option: str, message: str, public: str | None = None) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message
        self.public = message if public is None else public


def opt(default: Any, doc: str, option: str | None = None, lo=None, hi=None, choices=None):
    """A documented dataclass field with an optional range [lo, hi] or set of choices."""
    meta = {"doc": doc, "option": option, "lo": lo, "hi": hi, "choices": choices}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SftConfig:
    """The SFT policy: a tiny GPT-2 trained on the world's SFT corpus (part of the world)."""

    layers: int = opt(2, "transformer blocks of the policy", lo=1, hi=8)
    width: int = opt(64, "embedding width of the policy", lo=8, hi=1024)
    heads: int = opt(4, "attention heads", lo=1, hi=16)
    steps: int = opt(800, "SFT optimizer steps", lo=1, hi=100_000)
    batch_size: int = opt(256, "SFT answers per step", lo=1, hi=65_536)
    lr: float = opt(3e-3, "SFT peak learning rate (one-cycle schedule)", lo=1e-6, hi=1.0)
    seed: int = opt(0, "SFT seed (fixed: the initial policy is part of the world)", lo=0)


@dataclass(frozen=True)
class PreferenceConfig:
    """Preference pairs: two answers of the initial policy to one prompt, labelled by gold."""

    pairs: int = opt(16_000, "training pairs", "--pairs", lo=10, hi=1_000_000)
    eval_pairs: int = opt(1000, "held-out pairs (clean labels)", "--eval-pairs", lo=10, hi=100_000)
    label_noise: float = opt(
        0.25, "fraction of training labels flipped", "--label-noise", lo=0.0, hi=0.5
    )


@dataclass(frozen=True)
class RewardModelConfig:
    """The proxy ensemble: K reward models, differing as `diversity` says.

    finetune     the same pairs, each member its own head init and data order (Coste et al.)
    bootstrap    each member trains on the pairs resampled with replacement
    independent  each member gets its own freshly sampled and labelled pairs (member 0 the
                 experiment's): K times the labelling cost
    pretrain     each member's backbone comes from its own SFT run with its own seed (member 0
                 the initial policy); same pairs (Eisenstein et al.)
    """

    members: int = opt(5, "ensemble members K", "--members", lo=1, hi=16)
    layers: int = opt(
        1, "proxy capacity: SFT blocks kept under the score head", "--proxy-layers", lo=1, hi=8
    )
    epochs: int = opt(8, "passes over the training pairs", "--rm-epochs", lo=1, hi=100)
    lr: float = opt(1e-3, "Adam learning rate", "--rm-lr", lo=1e-7, hi=1.0)
    batch_size: int = opt(64, "pairs per step", "--rm-batch-size", lo=1, hi=65_536)
    score_l2: float = opt(1e-3, "L2 penalty on raw scores (keeps them centred)", lo=0.0, hi=1.0)
    diversity: str = opt("finetune", "how the members differ", "--diversity", choices=DIVERSITIES)


@dataclass(frozen=True)
class BonConfig:
    """Best-of-n: N answers for each of P prompts, scored once; every n <= N from that matrix."""

    num_prompts: int = opt(
        20, "prompts P (20: each toy prompt once)", "--num-prompts", lo=1, hi=10_000
    )
    samples: int = opt(4096, "answers per prompt N", "--samples", lo=2, hi=65_536)
    uwo_lambda: float = opt(0.5, "UWO lambda (population variance)", "--uwo-lambda", lo=0.0, hi=100)


@dataclass(frozen=True)
class PpoConfig:
    """PPO against one objective of the proxies, per-token KL penalty (backend/ppo.py).

    Rollouts are at temperature 1; gamma 1 and GAE lambda 0.95 as in Coste et al."""

    objective: str = opt("single", "objective PPO optimizes", "--objective", choices=OBJECTIVES)
    member: int = opt(0, "member the single objective uses", "--member", lo=0, hi=15)
    uwo_lambda: float = opt(0.1, "UWO lambda (population variance)", "--uwo-lambda", lo=0.0, hi=100)
    kl_coef: float = opt(
        0.0, "KL penalty beta (the adaptive controller's start)", "--kl-coef", lo=0.0, hi=10.0
    )
    kl_target: float = opt(
        0.0, "target KL (nats) of the adaptive controller; 0: fixed", "--kl-target", lo=0, hi=1000
    )
    kl_horizon: int = opt(10, "adaptive controller horizon in PPO steps", lo=1, hi=100_000)
    steps: int = opt(200, "PPO steps", "--steps", lo=1, hi=100_000)
    batch_size: int = opt(64, "rollouts (answers) per PPO step", lo=2, hi=65_536)
    minibatches: int = opt(2, "minibatches per epoch (must divide the batch)", lo=1, hi=1024)
    epochs: int = opt(4, "PPO epochs over each batch", lo=1, hi=100)
    lr: float = opt(1e-4, "Adam learning rate (policy and value model)", lo=1e-8, hi=1.0)
    clip: float = opt(0.2, "policy ratio clip epsilon", lo=0.0, hi=10.0)
    value_clip: float = opt(0.2, "value clip range around the old value", lo=0.0, hi=1e6)
    max_grad_norm: float = opt(1.0, "gradient clip norm (policy and value each)", lo=0.0, hi=1e6)
    gamma: float = opt(1.0, "discount per token", lo=0.0, hi=1.0)
    gae_lambda: float = opt(0.95, "GAE lambda", lo=0.0, hi=1.0)
    eval_every: int = opt(5, "evaluate every E PPO steps", "--eval-every", lo=1, hi=100_000)
    eval_prompts: int = opt(5, "held-out prompts (never trained on)", lo=1, hi=10_000)
    eval_samples: int = opt(128, "answers per held-out prompt per evaluation", lo=1, hi=100_000)
    norm_samples: int = opt(
        4096, "initial-policy answers that standardize the members", lo=2, hi=1_000_000
    )
    show_samples: int = opt(4, "sampled answers kept per evaluation", lo=0, hi=100)


@dataclass(frozen=True)
class DpoConfig:
    """Direct alignment on the preference pairs, no reward model (backend/dpo.py): DPO's
    logistic loss, IPO's squared loss or SLiC's hinge on the implicit reward margin
    beta * (log pi/pi_ref (chosen) - log pi/pi_ref (rejected)), summed over answer tokens."""

    loss: str = opt("dpo", "direct alignment loss", "--dpo-loss", choices=DPO_LOSSES)
    beta: float = opt(
        0.1, "beta: the implicit reward's scale (smaller: a larger KL budget)", "--dpo-beta",
        lo=1e-4, hi=100.0,
    )  # fmt: skip
    epochs: int = opt(5, "epochs over the preference pairs", "--dpo-epochs", lo=1, hi=1000)
    lr: float = opt(5e-4, "DPO's Adam learning rate", "--dpo-lr", lo=1e-8, hi=1.0)
    batch_size: int = opt(64, "preference pairs per DPO step", "--dpo-batch-size", lo=1, hi=65_536)
    max_grad_norm: float = opt(1.0, "gradient clip norm", lo=0.0, hi=1e6)
    eval_every: int = opt(
        25, "evaluate every E steps (and at fractions of the first epoch)", "--dpo-eval-every",
        lo=1, hi=100_000,
    )  # fmt: skip
    first_epoch_evals: int = opt(
        16, "evaluations spread evenly over the first epoch", lo=0, hi=1000
    )
    eval_prompts: int = opt(5, "held-out prompts (their pairs are not trained on)", lo=1, hi=10_000)
    eval_samples: int = opt(128, "answers per held-out prompt per evaluation", lo=1, hi=100_000)
    show_samples: int = opt(4, "sampled answers kept per evaluation", lo=0, hi=100)
    score_proxies: bool = opt(
        False, "proxies score the samples (trains the ensemble)", "--dpo-proxies"
    )


DTYPES = ("auto", "float32", "bfloat16")
HF_WORLD = "hf"
HF_MODEL_REQUIRED = "required for --world hf (a model id or a local folder)"
HF_PROMPTS_REQUIRED = "the hf world needs prompts: --prompt-file FILE (.jsonl or .csv)"
HF_PROMPTS_TWICE = "give prompts by --prompt-file or --dataset, not both"


@dataclass(frozen=True)
class HfWorldConfig:
    """The Hugging Face world (world "hf", docs/hf_world.md): a loaded policy (no SFT stage), a
    gold reward model, a proxy base and prompts from a file or a dataset. Models are a Hugging
    Face model id (from the local cache when offline) or a local folder; weights load from
    safetensors or with torch's weights_only loading, never as arbitrary pickles."""

    policy: str = opt("", "policy: a causal LM (model id or local folder)", "--policy")
    gold: str = opt("", "gold: a one-label sequence-classification reward model", "--gold")
    proxy_base: str = opt(
        "", "proxy base: any model that loads as a one-label classifier", "--proxy-base"
    )
    prompt_file: str = opt("", "prompts: a .jsonl or .csv file", "--prompt-file")
    prompt_field: str = opt("instruction", "column of the prompt text", "--prompt-field")
    dataset: str = opt("", "prompts from a datasets name instead of a file", "--dataset")
    split: str = opt("train", "split of --dataset", "--split")
    template: str = opt(
        "auto",
        "prompt template: auto (AlpacaFarm for an instruction column), alpaca, none, or text "
        "with {prompt}",
        "--template",
    )
    max_prompts: int = opt(
        0, "prompts kept from the file, in order (0: all)", "--max-prompts", lo=0
    )
    max_prompt_tokens: int = opt(
        256, "longest prompt in policy tokens (longer ones keep their end)", "--max-prompt-tokens",
        lo=1, hi=32_768,
    )  # fmt: skip
    max_answer_tokens: int = opt(
        64, "longest answer in policy tokens, EOS included", "--max-answer-tokens", lo=1, hi=32_768
    )
    max_rm_tokens: int = opt(
        512, "longest reward-model input in its own tokens (gold and proxies)", lo=8, hi=32_768
    )
    gold_dtype: str = opt(
        "auto", "gold weights: auto = bfloat16 on a GPU that has it", "--gold-dtype", choices=DTYPES
    )
    policy_dtype: str = opt(
        "float32", "policy weights (PPO trains in this dtype)", "--policy-dtype", choices=DTYPES
    )
    sample_batch_size: int = opt(
        256, "answers generated per batch (halved on out of memory)", lo=1, hi=65_536
    )
    score_batch_size: int = opt(
        128, "answers per reward-model batch (halved on out of memory)", lo=1, hi=65_536
    )


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment. Equal configs and seeds give equal numbers."""

    world: str = opt("toy-lists", "world name", "--world")
    method: str = opt("bon", "optimizer", "--method", choices=METHODS)
    seed: int = opt(0, "experiment seed (preferences, proxies, samples)", "--seed", lo=0, hi=2**31)
    device: str = opt("auto", "torch device", "--device", choices=DEVICES)
    sft: SftConfig = field(default_factory=SftConfig)
    preferences: PreferenceConfig = field(default_factory=PreferenceConfig)
    reward_models: RewardModelConfig = field(default_factory=RewardModelConfig)
    bon: BonConfig = field(default_factory=BonConfig)
    ppo: PpoConfig = field(default_factory=PpoConfig)
    dpo: DpoConfig = field(default_factory=DpoConfig)
    hf: HfWorldConfig = field(default_factory=HfWorldConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        """Inverse of to_dict; unknown keys are an error (a typo must not pass silently)."""
        return _from_dict(cls, d, "")

    def replace(self, **changes) -> ExperimentConfig:
        """A copy with changes; nested stages by dotted name, e.g. {"bon.samples": 64}."""
        nested: dict[str, dict] = {}
        top = {}
        for key, value in changes.items():
            if "." in key:
                stage, name = key.split(".", 1)
                nested.setdefault(stage, {})[name] = value
            else:
                top[key] = value
        for stage, sub in nested.items():
            top[stage] = dataclasses.replace(getattr(self, stage), **sub)
        return dataclasses.replace(self, **top)


def _from_dict(cls, d: dict, path: str):
    if not isinstance(d, dict):
        raise ConfigError(path or "config", f"expected an object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ConfigError(path or "config", f"unknown field(s) {sorted(unknown)}")
    kwargs = {}
    for name, value in d.items():
        f = fields[name]
        stage_cls = f.default_factory
        if isinstance(stage_cls, type) and dataclasses.is_dataclass(stage_cls):
            kwargs[name] = _from_dict(stage_cls, value, f"{path}{name}.")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _check_field(obj, f: dataclasses.Field, path: str) -> None:
    value = getattr(obj, f.name)
    meta = f.metadata
    option = meta.get("option") or f"{path}{f.name}"
    doc = meta.get("doc", f.name)
    kind = type(f.default)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(option, f"{doc} must be an integer, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConfigError(option, f"{doc} must be a number, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ConfigError(option, f"{doc} must be a string, got {value!r}")
    if kind is str and len(value) > MAX_TEXT:
        raise ConfigError(option, f"{doc} must be at most {MAX_TEXT} characters; got {len(value)}")
    if kind is str and "\0" in value:
        raise ConfigError(option, f"{doc} must not contain NUL bytes")
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(option, f"{doc} must be one of {', '.join(choices)}; got {value!r}")
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise ConfigError(option, f"{doc} must be between {lo} and {hi}; got {value}")
    if lo is not None and hi is None and value < lo:
        raise ConfigError(option, f"{doc} must be at least {lo}; got {value}")


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Check every field against its range and the fields against each other; raise ConfigError
    naming the option. Returns cfg. Pure (no files, no network, no imports): cheap enough for
    every keystroke of the form. What needs the world (its files, the hub, its number of prompts)
    is backend.worlds.registry.check_world, once per submission."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            for sub in dataclasses.fields(value):
                _check_field(value, sub, f"{f.name}.")
        else:
            _check_field(cfg, f, "")
    if cfg.world == HF_WORLD:
        _validate_hf(cfg.hf)
        if cfg.reward_models.diversity == "pretrain":
            raise ConfigError(
                "--diversity",
                "pretrain needs a world with an SFT stage (the toy worlds); the hf world has one "
                f"proxy base: use one of {', '.join(d for d in DIVERSITIES if d != 'pretrain')}",
            )
    elif cfg.reward_models.layers > cfg.sft.layers:
        raise ConfigError(
            "--proxy-layers",
            f"proxy capacity must be between 1 and the policy's {cfg.sft.layers} layers; "
            f"got {cfg.reward_models.layers}",
        )
    if cfg.sft.width % cfg.sft.heads:
        raise ConfigError("sft.heads", "the policy width must be a multiple of its heads")
    ppo, k = cfg.ppo, cfg.reward_models.members
    if ppo.member >= k:
        raise ConfigError("--member", f"member must be between 0 and {k - 1}; got {ppo.member}")
    if ppo.kl_target > 0 and ppo.kl_coef <= 0:
        raise ConfigError("--kl-coef", "the adaptive controller (--kl-target > 0) needs beta > 0")
    if ppo.batch_size % ppo.minibatches:
        raise ConfigError("ppo.minibatches", "the PPO batch must split into equal minibatches")
    return cfg


def _validate_hf(hf: HfWorldConfig) -> None:
    """What the hf world needs that the values alone tell: its three models named, one source
    of prompts. (Whether the models and the file exist is the world's check, at submission.)"""
    for name, option in (
        (hf.policy, "--policy"),
        (hf.gold, "--gold"),
        (hf.proxy_base, "--proxy-base"),
    ):
        if not name.strip():
            raise ConfigError(option, HF_MODEL_REQUIRED)
    if hf.prompt_file and hf.dataset:
        raise ConfigError("--prompt-file", HF_PROMPTS_TWICE)
    if not hf.prompt_file and not hf.dataset:
        raise ConfigError("--prompt-file", HF_PROMPTS_REQUIRED)


def field_docs(cls) -> list[tuple[str, str, Any, str]]:
    """(name, option, default, doc) of each field: used by the CLI's help and the docs."""
    return [
        (f.name, f.metadata.get("option"), f.default, f.metadata.get("doc", ""))
        for f in dataclasses.fields(cls)
        if f.metadata
    ]
