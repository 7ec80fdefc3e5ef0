"""The science commands of `python -m backend`: run, build-assets; and the options that define
an experiment (shared with db/cli.py's submit). backend/__main__.py puts them together with the
job commands (db/cli.py) and the report command (app/cli.py).

    python -m backend run --preset toy-bon --seed 0 --out RESULT.json

Exit codes: 0 done, 2 bad input (the message names the option and its allowed range; nothing is
written), 1 the experiment itself failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from backend.cache import can_create_in
from backend.config import ConfigError, DpoConfig, ExperimentConfig, HfWorldConfig, validate
from backend.presets import PRESETS, get_preset

# CLI option -> dotted config field. Types come from the config's defaults.
OVERRIDES = {
    "--world": "world",
    "--method": "method",
    "--device": "device",
    "--label-noise": "preferences.label_noise",
    "--pairs": "preferences.pairs",
    "--eval-pairs": "preferences.eval_pairs",
    "--members": "reward_models.members",
    "--proxy-layers": "reward_models.layers",
    "--rm-epochs": "reward_models.epochs",
    "--rm-lr": "reward_models.lr",
    "--diversity": "reward_models.diversity",
    "--num-prompts": "bon.num_prompts",
    "--samples": "bon.samples",
    "--uwo-lambda": "bon.uwo_lambda",  # and ppo.uwo_lambda: see config_from_args
    "--objective": "ppo.objective",
    "--member": "ppo.member",
    "--kl-coef": "ppo.kl_coef",
    "--kl-target": "ppo.kl_target",
    "--steps": "ppo.steps",
    "--eval-every": "ppo.eval_every",
}
# DPO's options (--dpo-loss, --dpo-beta, ...) come from the metadata of its config stage.
OVERRIDES.update(
    {
        f.metadata["option"]: f"dpo.{f.name}"
        for f in dataclasses.fields(DpoConfig)
        if f.metadata.get("option")
    }
)
# The Hugging Face world's options (--policy, --gold, --proxy-base, --prompt-file, ...) come from
# the metadata of its config stage, like the form's fields.
OVERRIDES.update(
    {
        f.metadata["option"]: f"hf.{f.name}"
        for f in dataclasses.fields(HfWorldConfig)
        if f.metadata.get("option")
    }
)


def _field_type(cfg: ExperimentConfig, dotted: str) -> type:
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return type(obj)


def add_experiment_options(p: argparse.ArgumentParser) -> None:
    """The options that define an experiment (shared by run and submit)."""
    p.add_argument("--preset", default="toy-bon", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--seed", default="0", help="experiment seed (0 .. 2^31)")
    base = ExperimentConfig()
    for option, dotted in OVERRIDES.items():
        p.add_argument(
            option, dest=dotted, default=None, metavar=_field_type(base, dotted).__name__.upper()
        )


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _parse_value(option: str, raw: str, kind: type):
    try:
        if kind is bool:
            if raw.lower() not in TRUE + FALSE:
                raise ValueError(raw)
            return raw.lower() in TRUE
        return kind(raw)
    except ValueError:
        expected = "true or false" if kind is bool else kind.__name__
        raise ConfigError(option, f"expected {expected}, got {raw!r}") from None


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """Preset, then overrides; validated. Raises ConfigError naming the option."""
    cfg = get_preset(args.preset)
    changes = {"seed": _parse_value("--seed", args.seed, int)}
    for option, dotted in OVERRIDES.items():
        raw = getattr(args, dotted)
        if raw is not None:
            changes[dotted] = _parse_value(option, raw, _field_type(cfg, dotted))
    # --uwo-lambda sets UWO's lambda of either method (defaults differ: best-of-n 0.5, PPO 0.1).
    if "bon.uwo_lambda" in changes:
        changes["ppo.uwo_lambda"] = changes["bon.uwo_lambda"]
    return validate(cfg.replace(**changes))


def check_writable(option: str, path: str | None, folder: bool = False) -> None:
    """ConfigError naming `option` unless `path` can be written (a file, or with folder=True a
    folder), creating nothing: checked before the work whose result it receives."""
    if not path:
        return
    p = Path(path).expanduser()
    try:
        is_dir, exists = p.is_dir(), p.exists()
        if exists and not folder and is_dir:
            raise ConfigError(option, f"{path} is a folder, not a file")
        if exists and folder and not is_dir:
            raise ConfigError(option, f"{path} is a file, not a folder")
        if exists and is_dir and not can_create_in(p):
            raise ConfigError(option, f"{path} cannot be written (permission denied)")
        if exists and not is_dir:
            with open(p, "ab"):  # appends nothing, truncates nothing: only asks
                pass
        if not exists and not can_create_in(p.absolute().parent):
            raise ConfigError(option, f"{path} cannot be created here (not writable)")
    except ConfigError:
        raise
    except PermissionError:
        raise ConfigError(option, f"{path} cannot be written (permission denied)") from None
    except (OSError, ValueError) as e:  # a name too long for a path, a NUL byte, read-only
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(option, f"not a usable path ({reason})") from None


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from backend.admission import check_admission
    from backend.cache import ArtifactCache
    from backend.experiment import run_experiment
    from backend.objectives import Objective
    from backend.runtime import resolve_device
    from backend.summary import SINGLE_AVG
    from backend.worlds.registry import check_world

    check_writable("--out", args.out)
    check_writable("--scores", args.scores)
    cfg = check_admission(config_from_args(args))
    resolve_device(cfg.device)
    cfg = check_world(cfg)

    def progress(frac: float, msg: str) -> None:
        if not args.quiet:
            print(f"[{frac:5.0%}] {msg}", file=sys.stderr, flush=True)

    out = run_experiment(cfg, progress, cache=ArtifactCache(enabled=not args.no_cache))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out.result, indent=1))
    if args.scores:
        np.savez_compressed(args.scores, **out.arrays)
    s = out.result["summary"]
    print(f"wrote {args.out} in {out.result['timings']['total_s']:.1f} s", file=sys.stderr)
    labels = [c["label"] for c in out.result["curves"]]  # PPO: its one curve
    if cfg.method == "bon":
        uwo = Objective("uwo", lam=cfg.bon.uwo_lambda).label
        labels = [SINGLE_AVG, "mean", "wco", uwo]
    for label in labels:
        st = s[label]
        proxy = "" if st["proxy_final"] is None else f"  proxy final {st['proxy_final']:+.3f}"
        print(
            f"  {label:18s} gold start {st['gold_start']:+.3f}  peak {st['gold_peak']:+.3f}"
            f"  final {st['gold_final']:+.3f}{proxy}",
            file=sys.stderr,
        )
    return 0


def cmd_build_assets(args: argparse.Namespace) -> int:
    from backend.config import SftConfig
    from backend.worlds.registry import get_world, load_worlds
    from backend.worlds.sft import SHIPPED_SEEDS, SftWorld, shipped_sft_dir, write_sft

    sft_worlds = sorted(n for n, cls in load_worlds().items() if issubclass(cls, SftWorld))
    for name in args.worlds or sft_worlds:
        if name not in sft_worlds:
            raise ConfigError("WORLD", f"must be one of {', '.join(sft_worlds)}; got {name!r}")
        world = get_world(name)
        for seed in SHIPPED_SEEDS:
            cfg = SftConfig(seed=seed)
            folder = shipped_sft_dir(world, cfg)
            write_sft(world, cfg, folder, lambda f, m: print(m, file=sys.stderr))
            print(f"wrote {folder}")
    return 0


Registrar = Callable[[argparse._SubParsersAction], None]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the science commands (run, build-assets) to `python -m backend`'s subcommands."""
    run = sub.add_parser("run", help="run one experiment and write RESULT.json")
    add_experiment_options(run)
    run.add_argument("--out", required=True, help="RESULT.json path")
    run.add_argument("--scores", help="also write the standardized score matrix (.npz)")
    run.add_argument("--no-cache", action="store_true", help="recompute every stage")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(func=cmd_run)

    build = sub.add_parser("build-assets", help="retrain the shipped SFT policies")
    build.add_argument("worlds", nargs="*")
    build.set_defaults(func=cmd_build_assets)


def build_parser(registrars: tuple[Registrar, ...] = (register,)) -> argparse.ArgumentParser:
    """The parser with the commands each registrar adds (default: the science commands only;
    backend/__main__.py passes every layer's)."""
    parser = argparse.ArgumentParser(prog="python -m backend", description="Goodhart Lab engine")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in registrars:
        add(sub)
    return parser


def main(argv: list[str] | None = None, registrars: tuple[Registrar, ...] = (register,)) -> int:
    """Parse and run one command; a ConfigError (bad input) prints its message and exits 2."""
    args = build_parser(registrars).parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"error: {e.option}: {e.message}", file=sys.stderr)
        return 2
