"""The policy: a tiny GPT-2 causal LM trained on the world's SFT corpus; sampling and log-probs.

Shapes: B sequences, Tp prompt tokens, T answer tokens, V vocabulary.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedModel

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


def train_sft(world: World, cfg: SftConfig, progress=None) -> GPT2LMHeadModel:
    """Train the SFT policy on answers drawn from the world's SFT distribution.

    Loss on answer tokens only (EOS included, PAD ignored): the prompt is given, not learned.
    """
    rng = np.random.default_rng(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # weight init uses the global generator
        model = GPT2LMHeadModel(policy_config(world, cfg))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1
    )
    n_prompts = len(world.prompts())
    model.train()
    for step in range(cfg.steps):
        prompt_idx = rng.integers(0, n_prompts, size=cfg.batch_size)  # (B,)
        answers = torch.from_numpy(world.sample_sft_answers(prompt_idx, rng))  # (B, T)
        ids = torch.cat([world.prompt_ids(prompt_idx), answers], dim=1)  # (B, Tp+T)
        logits = model(ids).logits[:, world.prompt_len - 1 : -1]  # (B, T, V): predicts answers
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            answers.reshape(-1),
            ignore_index=world.pad_id,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None and step % 50 == 0:
            progress(step / cfg.steps, f"SFT step {step}/{cfg.steps}, loss {loss.item():.3f}")
    model.eval()
    return model


@torch.no_grad()
def sample_answers(
    model: PreTrainedModel,
    world: World,
    prompt_idx: np.ndarray,
    generator: torch.Generator,
    temperature: float = 1.0,
    batch_size: int = 4096,
    return_logprobs: bool = False,
):
    """Sample one answer per prompt index: (B,) -> answers (B, T) int64 [and log-probs (B, T)].

    Uses the KV cache; every prompt has the same length, so no padding or attention mask is
    needed. After EOS the row is filled with PAD (log-prob 0). `generator` must live on the
    model's device. Worlds with left-padded prompts (the hf world) go to `_sample_padded`.
    """
    if world.pads_prompts:
        return _sample_padded(model, world, prompt_idx, generator, temperature, return_logprobs)
    device = next(model.parameters()).device
    T = world.max_answer_tokens
    out_tok, out_lp = [], []
    for start in range(0, len(prompt_idx), batch_size):
        idx = prompt_idx[start : start + batch_size]
        ids = world.prompt_ids(idx).to(device)  # (B, Tp)
        B = ids.shape[0]
        tokens = torch.full((B, T), world.pad_id, dtype=torch.long, device=device)
        logps = torch.zeros((B, T), device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        out = model(ids, use_cache=True)
        cache_arg = _cache_arg(model)
        for t in range(T):
            logits = out.logits[:, -1].float() / temperature  # (B, V)
            probs = torch.softmax(logits, dim=-1)
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
            lp = torch.log_softmax(logits, dim=-1).gather(1, tok[:, None]).squeeze(1)
            tokens[:, t] = torch.where(done, world.pad_id, tok)
            logps[:, t] = torch.where(done, 0.0, lp)
            done = done | (tok == world.eos_id)
            if bool(done.all()):
                break
            step = tokens[:, t : t + 1]
            out = model(step, use_cache=True, **{cache_arg: getattr(out, cache_arg)})
        out_tok.append(tokens.cpu())
        out_lp.append(logps.cpu())
    answers = torch.cat(out_tok).numpy()
    if return_logprobs:
        return answers, torch.cat(out_lp)
    return answers


def _cache_arg(model) -> str:
    """The KV cache's name in forward's arguments and outputs: transformers 5.24 renamed
    `past_key_values` to `cache` (the old name warns, and goes in 5.40); GPU images may carry an
    older release, so use whichever this version has."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def _sample_padded(model, world, prompt_idx, generator, temperature, return_logprobs):
    """sample_answers for left-padded prompts of varying length: the attention mask hides the
    padding and position ids count real tokens, so a prompt's answer does not depend on how
    much padding its batch needed. Batches halve on CUDA out-of-memory (world.sample_batch)."""
    device = next(model.parameters()).device
    T, cache_arg = world.max_answer_tokens, _cache_arg(model)

    def run(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = prompt_idx[start:stop]
        mask = world.prompt_mask(idx)  # (B, Tp)
        skip = int(mask.any(0).long().argmax())  # columns that are padding in every row
        ids = world.prompt_ids(idx)[:, skip:].to(device)  # (B, Tp - skip)
        mask = mask[:, skip:].to(device)
        pos = (mask.cumsum(1) - 1).clamp(min=0)  # (B, Tp - skip): positions of real tokens
        B = ids.shape[0]
        tokens = torch.full((B, T), world.pad_id, dtype=torch.long, device=device)
        logps = torch.zeros((B, T), device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        out = model(ids, attention_mask=mask, position_ids=pos, use_cache=True)
        next_pos = pos[:, -1:] + 1  # (B, 1)
        for t in range(T):
            logits = out.logits[:, -1].float() / temperature  # (B, V)
            tok = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)
            lp = torch.log_softmax(logits, dim=-1).gather(1, tok[:, None]).squeeze(1)
            tokens[:, t] = torch.where(done, world.pad_id, tok)
            logps[:, t] = torch.where(done, 0.0, lp)
            done = done | (tok == world.eos_id)
            if bool(done.all()) or t == T - 1:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)  # (B, Tp+t+1)
            out = model(
                tokens[:, t : t + 1], attention_mask=mask, position_ids=next_pos, use_cache=True,
                **{cache_arg: getattr(out, cache_arg)},
            )  # fmt: skip
            next_pos = next_pos + 1
        return tokens.cpu(), logps.cpu()

    parts = world.sample_batch.map(run, len(prompt_idx))
    answers = torch.cat([a for a, _ in parts]).numpy()
    if return_logprobs:
        return answers, torch.cat([lp for _, lp in parts])
    return answers


def answer_logprobs(
    model: PreTrainedModel, prompt_ids: torch.Tensor, answers: torch.Tensor, world: World
) -> torch.Tensor:
    """Log-prob of each answer token under the model: (B, Tp), (B, T) -> (B, T); 0 on PAD."""
    ids = torch.cat([prompt_ids, answers], dim=1)  # (B, Tp+T)
    logits = model(ids).logits[:, world.prompt_len - 1 : -1].float()  # (B, T, V)
    lp = torch.log_softmax(logits, dim=-1).gather(2, answers[..., None]).squeeze(2)  # (B, T)
    return lp * (answers != world.pad_id)


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
