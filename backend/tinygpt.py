"""A small GPT-2 in plain torch: the toy worlds' policy, value model trunk and proxies.

Same parameters (names, shapes, safetensors files) and the same arithmetic, op for op, as
transformers' GPT2LMHeadModel in eval mode with exact GELU, no dropout and SDPA attention (a test
checks the logits are bit-identical), without what costs time at this size: transformers' import
(several seconds at start), its per-call bookkeeping, and work the engine does not need:
- `Cache.batch_select_indices(rows)` keeps the sampler's live prefixes in the KV cache;
- `GPTScorer` (a proxy) computes its last block at the one position its score reads, the
  sequence's last token: keys and values for every position, everything after them for one.
Shapes: B sequences, S positions, d width, H heads, h = d / H, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GPTConfig:
    """A GPT-2 with exact GELU (one fused op; GPT-2's tanh approximation is five, and at this
    width the element-wise ops, not the matmuls, dominate CPU time: measured 2-3x slower) and no
    dropout (the corpus is synthetic and plentiful, and sampling must be deterministic)."""

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    pad_token_id: int
    eos_token_id: int
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02

    @property
    def hidden_size(self) -> int:
        return self.n_embd


@dataclass
class Output:
    """What a forward returns, under transformers' names (the engine reads .logits, .cache and
    .last_hidden_state whichever model it drives)."""

    logits: torch.Tensor | None = None
    cache: Cache | None = None
    last_hidden_state: torch.Tensor | None = None


@dataclass
class Cache:
    """Keys and values of every block, (B, H, S, h) each, grown one step at a time."""

    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def length(self) -> int:
        return self.layers[0][0].shape[2] if self.layers else 0

    def batch_select_indices(self, rows: torch.Tensor) -> None:
        """Rows `rows` of the batch, in that order, repeats allowed (transformers' name for it):
        the sampler's prefixes that go on."""
        self.layers = [(k[rows], v[rows]) for k, v in self.layers]


class Conv1D(nn.Module):
    """GPT-2's linear layer: y = x W + b with W stored (in, out), computed as transformers does."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)  # (B*S, out)
        return out.view(*x.shape[:-1], -1)


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.d = cfg.n_head, cfg.n_embd
        self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        B, S, _ = x.shape
        return x.view(B, S, self.n_head, -1).transpose(1, 2)  # (B, H, S, h)

    def forward(self, x: torch.Tensor, past: tuple | None, use_cache: bool):
        """x (B, S, d) -> (B, S, d), and this block's (keys, values) when caching."""
        q, k, v = self.c_attn(x).split(self.d, dim=2)
        q, k, v = self.heads(q), self.heads(k), self.heads(v)
        if use_cache:  # transformers' cache concatenates (so keys are contiguous from the start)
            k = torch.cat([past[0], k] if past else [k[:, :, :0].contiguous(), k], dim=-2)
            v = torch.cat([past[1], v] if past else [v[:, :, :0].contiguous(), v], dim=-2)
        S = q.shape[2]
        y = F.scaled_dot_product_attention(q, k, v, scale=q.shape[-1] ** -0.5, is_causal=S > 1)
        y = y.reshape(y.shape[0], -1, S, y.shape[-1]).transpose(1, 2).contiguous()  # (B, S, H, h)
        y = y.reshape(*y.shape[:-2], -1).contiguous()  # (B, S, d)
        return self.c_proj(y), ((k, v) if use_cache else None)

    def last(self, x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Attention output at each row's position `last` only: x (B, S, d) -> (B, d). Keys and
        values come from every position; positions after `last` are masked out."""
        B, S, d = x.shape
        w, b = self.c_attn.weight, self.c_attn.bias
        kv = torch.addmm(b[d:], x.reshape(-1, d), w[:, d:]).view(B, S, 2 * d)  # (B, S, 2d)
        k, v = self.heads(kv[..., :d]), self.heads(kv[..., d:])  # (B, H, S, h)
        x_last = x[torch.arange(B, device=x.device), last]  # (B, d)
        q = torch.addmm(b[:d], x_last, w[:, :d]).view(B, self.n_head, 1, -1)  # (B, H, 1, h)
        seen = torch.arange(S, device=x.device)[None, :] <= last[:, None]  # (B, S)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=seen[:, None, None, :])
        return self.c_proj(y.reshape(B, d))  # (B, d)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = Conv1D(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = Conv1D(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)

    def forward(self, h: torch.Tensor, past: tuple | None = None, use_cache: bool = False):
        a, kv = self.attn(self.ln_1(h), past, use_cache)
        h = a + h
        return h + self.mlp(self.ln_2(h)), kv

    def last(self, h: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """The block's output at each row's position `last` only: (B, S, d) -> (B, d)."""
        h_last = h[torch.arange(h.shape[0], device=h.device), last]  # (B, d)
        h_last = self.attn.last(self.ln_1(h), last) + h_last
        return h_last + self.mlp(self.ln_2(h_last))


class Trunk(nn.Module):
    """Embeddings, blocks and the final layer norm (transformers' `transformer` / base model)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)

    def embed(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)[None, :] + start  # (1, S)
        return self.wte(ids) + self.wpe(pos)  # (B, S, d)

    def forward(
        self, ids: torch.Tensor, cache: Cache | None = None, use_cache: bool = False
    ) -> Output:
        if use_cache and cache is None:
            cache = Cache()
        h = self.embed(ids, cache.length() if cache is not None else 0)
        layers = []
        for i, block in enumerate(self.h):
            past = cache.layers[i] if cache is not None and cache.layers else None
            h, kv = block(h, past, use_cache)
            layers.append(kv)
        if use_cache:
            cache.layers = layers
        return Output(last_hidden_state=self.ln_f(h), cache=cache if use_cache else None)


class GPTModel(nn.Module):
    """GPT-2 with its language-model head tied to the token embeddings: the toy policy."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.transformer = Trunk(cfg)

    @property
    def base_model(self) -> Trunk:
        return self.transformer

    @property
    def device(self) -> torch.device:
        return self.transformer.wte.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.wte.weight.dtype

    def forward(
        self,
        ids: torch.Tensor,
        use_cache: bool = False,
        cache: Cache | None = None,
    ) -> Output:
        out = self.transformer(ids, cache, use_cache)
        logits = F.linear(out.last_hidden_state, self.transformer.wte.weight)  # (B, S, V)
        return Output(logits=logits, cache=out.cache)


class GPTScorer(nn.Module):
    """A reward model: a GPT-2 trunk and a one-output score head read at each sequence's last
    token (the last that is not PAD; after it come only PAD), as transformers'
    GPT2ForSequenceClassification reads it. Only the last block's keys and values are computed
    at every position; the rest of the last block, the final norm and the head at one."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.transformer = Trunk(cfg)
        self.score = nn.Linear(cfg.n_embd, 1, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Scores of right-padded sequences: (B, S) -> (B,) float32."""
        real = ids != self.config.pad_token_id  # (B, S)
        positions = torch.arange(ids.shape[1], device=ids.device)
        last = (positions * real).argmax(1)  # (B,) the last real token
        ids = ids[:, : int(last.max()) + 1]  # columns after every row's last token: not needed
        t = self.transformer
        h = t.embed(ids)
        for block in t.h[:-1]:
            h, _ = block(h)
        h = t.ln_f(t.h[-1].last(h, last))  # (B, d)
        return self.score(h).squeeze(-1)


def gpt2_config(cfg: GPTConfig):
    """transformers' GPT2Config of the same model (the SFT policy is trained with transformers,
    and the tests compare the two implementations)."""
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=cfg.vocab_size,
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        bos_token_id=cfg.eos_token_id,
        eos_token_id=cfg.eos_token_id,
        pad_token_id=cfg.pad_token_id,
        layer_norm_epsilon=cfg.layer_norm_epsilon,
        initializer_range=cfg.initializer_range,
        activation_function="gelu",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )


# ---- weights on disk: transformers' GPT-2 names, safetensors --------------------------------


def load_policy_weights(model: GPTModel, path: Path) -> None:
    """Load a policy saved by transformers' GPT2LMHeadModel (safetensors): its tied LM head is
    stored once, as lm_head.weight, which the file's metadata maps to transformer.wte.weight."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device=str(model.device)) as f:
        aliases = {v: k for k, v in (f.metadata() or {}).items()}  # stored name -> model name
        state = {aliases.get(k, k): f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    model.load_state_dict(state, strict=True)
