"""The policy: the toy worlds' GPT-2 config (backend/tinygpt.py), and sampling answers from any
causal LM (the toy policy, or a transformers model of the hf world).

Shapes: B sequences, Tp prompt tokens, T answer tokens, V vocabulary.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from backend.config import SftConfig
from backend.tinygpt import GPTConfig
from backend.worlds.base import World

# What sampled answers depend on besides the policy and the seed, in their cache keys: 2 = shared
# prefixes and inverse-CDF draws (version 1 drew every row with torch.multinomial).
SAMPLER_VERSION = 2
SAMPLER_KEY = ("sampler", SAMPLER_VERSION)  # in the key of every cached stage that samples


def policy_config(world: World, cfg: SftConfig) -> GPTConfig:
    """The SFT policy of a toy world: its vocabulary, prompt + answer positions, and cfg's size."""
    tok = world.tokenizer
    return GPTConfig(
        vocab_size=len(tok),
        n_positions=world.prompt_len + world.max_answer_tokens,
        n_embd=cfg.width,
        n_layer=cfg.layers,
        n_head=cfg.heads,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )


@torch.no_grad()
def sample_answers(
    model: torch.nn.Module,
    world: World,
    prompt_idx: np.ndarray,
    generator: torch.Generator,
    temperature: float = 1.0,
    return_logprobs: bool = False,
):
    """Sample one answer per prompt index: (B,) -> answers (B, T) int64 [and log-probs (B, T)].

    Answers that share a prefix (the same prompt and the same tokens so far) share one forward
    pass: at each step the model runs once per distinct live prefix, with the KV cache of its
    parent, and every answer draws its next token from its prefix's distribution by inverse CDF
    with its own uniform number. Sharing changes no probability, only the work: on the default
    toy-bon samples (P = 20 prompts x N = 4096) the model runs 70,671 prefix rows instead of
    307,944 rows of unfinished answers. Each step draws one uniform for every row of the batch,
    finished or not, so the random stream does not depend on how much was shared.

    After EOS the row is filled with PAD (log-prob 0). `generator` must live on the model's
    device. Prompts that the world left-pads (the hf world) get an attention mask that hides the
    padding and position ids that count real tokens only, so an answer does not depend on how
    much padding its batch needed; fixed-length prompts (the toy worlds) need neither and the
    model sees ids alone. Batches halve on CUDA out-of-memory (world.sample_batch).
    """
    device = next(model.parameters()).device
    T, cache_arg = world.max_answer_tokens, _cache_arg(model)

    def run(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(prompt_idx[start:stop])
        B = len(idx)
        prompts, row_pid = np.unique(idx, return_inverse=True)  # prefixes at step 0: prompts
        row_pid = torch.as_tensor(row_pid.reshape(-1), device=device)  # (B,) each row's prefix
        ids = world.prompt_ids(prompts)  # (U, Tp)
        inputs, next_pos = {}, None
        if world.pads_prompts:
            mask = world.prompt_mask(prompts)  # (U, Tp)
            skip = int(mask.any(0).long().argmax())  # columns that are padding in every row
            ids, mask = ids[:, skip:], mask[:, skip:].to(device)  # (U, Tp - skip)
            pos = (mask.cumsum(1) - 1).clamp(min=0)  # positions of real tokens
            inputs = {"attention_mask": mask, "position_ids": pos}
            next_pos = pos[:, -1:] + 1  # (U, 1)
        out = model(ids.to(device), use_cache=True, **inputs)
        tokens = torch.full((B, T), world.pad_id, dtype=torch.long, device=device)
        logps = torch.zeros((B, T), device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        for t in range(T):
            logits = out.logits[:, -1].float() / temperature  # (U, V)
            tok = _draw(logits, row_pid, generator)  # (B,)
            lp = torch.log_softmax(logits, dim=-1)[row_pid, tok]  # (B,)
            tokens[:, t] = torch.where(done, world.pad_id, tok)
            logps[:, t] = torch.where(done, 0.0, lp)
            done = done | (tok == world.eos_id)
            if bool(done.all()) or t == T - 1:
                break
            # The live prefixes of the next step: distinct (prefix, token) of unfinished rows.
            V = logits.shape[1]
            live = (~done).nonzero().squeeze(1)  # (L,)
            keys, inverse = torch.unique(row_pid[live] * V + tok[live], return_inverse=True)
            parents, new_tokens = keys // V, keys % V  # (U',) each
            row_pid = torch.zeros_like(row_pid)
            row_pid[live] = inverse
            cache = getattr(out, cache_arg)
            cache.batch_select_indices(parents)
            if next_pos is not None:  # the new token is real: mask 1, next position
                mask = inputs["attention_mask"][parents]
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                inputs = {"attention_mask": mask, "position_ids": next_pos[parents]}
                next_pos = inputs["position_ids"] + 1
            out = model(new_tokens[:, None], use_cache=True, **inputs, **{cache_arg: cache})
        return tokens.cpu(), logps.cpu()

    parts = world.sample_batch.map(run, len(prompt_idx))
    answers = torch.cat([a for a, _ in parts]).numpy()
    if return_logprobs:
        return answers, torch.cat([lp for _, lp in parts])
    return answers


def _draw(logits: torch.Tensor, row_pid: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row from its prefix's softmax(logits) by inverse CDF: (U, V), (B,) -> (B,).

    The CDFs of all prefixes are laid end to end, prefix p's shifted by p, so one searchsorted
    serves every row; float64 keeps the smallest probabilities of a 50k vocabulary drawable."""
    U, V = logits.shape
    cdf = torch.softmax(logits.double(), dim=-1).cumsum(-1)  # (U, V)
    cdf = cdf / cdf[:, -1:]  # exactly 1 at the end
    u = torch.rand(len(row_pid), generator=generator, device=logits.device, dtype=torch.float64)
    shift = torch.arange(U, device=logits.device, dtype=torch.float64)[:, None]
    flat = (cdf + shift).reshape(-1)  # (U*V,) increasing
    at = torch.searchsorted(flat, u + row_pid.double(), right=True)  # (B,)
    return (at - row_pid * V).clamp(0, V - 1)


def _cache_arg(model) -> str:
    """The KV cache's name in forward's arguments and outputs: transformers 5.24 renamed
    `past_key_values` to `cache` (the old name warns, and goes in 5.40); GPU images may carry an
    older release, so use whichever this version has."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
