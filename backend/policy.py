"""The policy: a tiny GPT-2 causal LM config for a world, and sampling answers from a policy.

Shapes: B sequences, Tp prompt tokens, T answer tokens, V vocabulary.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from transformers import GPT2Config, PreTrainedModel

from backend.config import SftConfig
from backend.worlds.base import World


def policy_config(world: World, cfg: SftConfig) -> GPT2Config:
    tok = world.tokenizer
    return GPT2Config(
        vocab_size=len(tok),
        n_positions=world.prompt_len + world.max_answer_tokens,
        n_embd=cfg.width,
        n_layer=cfg.layers,
        n_head=cfg.heads,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        # Exact GELU is one fused op; GPT-2's tanh approximation is five, and at this width the
        # element-wise ops, not the matmuls, dominate CPU time (measured: 2-3x slower).
        activation_function="gelu",
        # No dropout: the corpus is synthetic and plentiful, and sampling must be deterministic.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )


@torch.no_grad()
def sample_answers(
    model: PreTrainedModel,
    world: World,
    prompt_idx: np.ndarray,
    generator: torch.Generator,
    temperature: float = 1.0,
    return_logprobs: bool = False,
):
    """Sample one answer per prompt index: (B,) -> answers (B, T) int64 [and log-probs (B, T)].

    Uses the KV cache. After EOS the row is filled with PAD (log-prob 0). `generator` must live
    on the model's device. Prompts that the world left-pads (the hf world) get an attention mask
    that hides the padding and position ids that count real tokens only, so an answer does not
    depend on how much padding its batch needed; fixed-length prompts (the toy worlds) need
    neither and the model sees ids alone. Batches halve on CUDA out-of-memory
    (world.sample_batch).
    """
    device = next(model.parameters()).device
    T, cache_arg = world.max_answer_tokens, _cache_arg(model)

    def run(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = prompt_idx[start:stop]
        ids = world.prompt_ids(idx)  # (B, Tp)
        inputs, next_pos = {}, None
        if world.pads_prompts:
            mask = world.prompt_mask(idx)  # (B, Tp)
            skip = int(mask.any(0).long().argmax())  # columns that are padding in every row
            ids, mask = ids[:, skip:], mask[:, skip:].to(device)  # (B, Tp - skip)
            pos = (mask.cumsum(1) - 1).clamp(min=0)  # positions of real tokens
            inputs = {"attention_mask": mask, "position_ids": pos}
            next_pos = pos[:, -1:] + 1  # (B, 1)
        ids = ids.to(device)
        B = ids.shape[0]
        tokens = torch.full((B, T), world.pad_id, dtype=torch.long, device=device)
        logps = torch.zeros((B, T), device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        out = model(ids, use_cache=True, **inputs)
        for t in range(T):
            logits = out.logits[:, -1].float() / temperature  # (B, V)
            probs = torch.softmax(logits, dim=-1)
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
            lp = torch.log_softmax(logits, dim=-1).gather(1, tok[:, None]).squeeze(1)
            tokens[:, t] = torch.where(done, world.pad_id, tok)
            logps[:, t] = torch.where(done, 0.0, lp)
            done = done | (tok == world.eos_id)
            if bool(done.all()) or t == T - 1:
                break
            if next_pos is not None:  # the new token is real: mask 1, next position
                mask = torch.cat([inputs["attention_mask"], torch.ones_like(next_pos)], dim=1)
                inputs = {"attention_mask": mask, "position_ids": next_pos}
                next_pos = next_pos + 1
            out = model(
                tokens[:, t : t + 1], use_cache=True, **inputs,
                **{cache_arg: getattr(out, cache_arg)},
            )  # fmt: skip
        return tokens.cpu(), logps.cpu()

    parts = world.sample_batch.map(run, len(prompt_idx))
    answers = torch.cat([a for a, _ in parts]).numpy()
    if return_logprobs:
        return answers, torch.cat([lp for _, lp in parts])
    return answers


def _cache_arg(model) -> str:
    """The KV cache's name in forward's arguments and outputs: transformers 5.24 renamed
    `past_key_values` to `cache` (the old name warns, and goes in 5.40); GPU images may carry an
    older release, so use whichever this version has."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
