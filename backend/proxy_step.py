"""A Bradley-Terry training step of a one-block toy proxy with its backward pass written out.

Why: a toy proxy (backend/tinygpt.py GPTScorer with one block, width 64, 14-token sequences) is
far too small for torch's autograd. Its step through autograd spent most of its time in
bookkeeping and small kernels (zero fills of slice backwards, the CPU attention kernel for one
query, the optimizer's per-tensor loop), not in the matmuls: 3.1 ms a step of 64 pairs on one
core, 1.3 ms here. This computes the same function and the same gradient (in float64 the two
trainings agree to 3e-10 after toy-bon's 2,000 steps: tests/test_proxy_step.py), with three
exact rewrites:

- The first block reads the sum of a token's and a position's embedding, so its layer norm and
  its key and value projections depend on the (token, position) pair alone: they are computed
  once per step for each pair the minibatch's sequences use (a table of R rows: about 180 for
  64 of toy-bon's pairs, of the 335 its 32,000 sequences use) instead of for every position of
  every sequence (2B * S = 1,792 rows for a minibatch of 64 pairs). The backward adds the
  gradients back into that table.
- The score reads the last token only, so the query, the attention and everything after it are
  computed at that one position (GPTScorer does the same), as matmuls of the B last tokens'
  queries by the table's keys, read at the rows each sequence holds.
- The parameters are views of one flat buffer and their gradients of another, so AdamW is one
  fused call over one tensor (torch's fused AdamW, element by element: the same arithmetic).

Rounding differs from autograd's (other summation orders), and training amplifies it: a
trained proxy's scores move by rounding (backend.ARITHMETIC["proxies"], in every proxy's cache
key). Shapes: B sequences (a pair's chosen then its rejected, pair after pair), S positions, d
width, H heads, e = d / H, R table rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from backend.tinygpt import GPTScorer

_ALL = [True, True, True]


def supports(proxy) -> bool:
    """Toy proxies of one block (the default capacity); others train through autograd."""
    return isinstance(proxy, GPTScorer) and proxy.config.n_layer == 1


@dataclass(frozen=True)
class Batch:
    """B sequences ready for the forward pass, each position a row of the batch's own table: a
    minibatch of B / 2 pairs for a training step (a pair's chosen then its rejected, pair after
    pair: ProxyStep.batches), or sequences to score (sequences_batch)."""

    row: torch.Tensor  # (B, S) each position's row in the table
    row_last: torch.Tensor  # (B,) the row of each sequence's last real token
    mask: torch.Tensor  # (B, S) 0, or -inf after the last real token
    tokens: torch.Tensor  # (R,) the table rows' tokens
    positions: torch.Tensor  # (R,) and positions

    @property
    def pairs(self) -> int:
        return self.row.shape[0] // 2


def _forward(proxy: GPTScorer, batch: Batch) -> SimpleNamespace:
    """The forward pass of a one-block GPTScorer on a Batch: the scores `s` (B,) and every
    intermediate the backward reads (all of this function's locals)."""
    row, row_last, mask = batch.row, batch.row_last, batch.mask
    tokens, positions = batch.tokens, batch.positions
    t = proxy.transformer
    blk = t.h[0]
    at, mlp = blk.attn, blk.mlp
    c = proxy.config
    d, H, eps = c.n_embd, c.n_head, c.layer_norm_epsilon
    e = d // H
    B, S = row.shape
    scale = e**-0.5
    # The table: embedding sum, ln_1, keys and values of every used (token, position).
    h_tab = t.wte.weight.index_select(0, tokens) + t.wpe.weight.index_select(0, positions)
    x_tab, mu1, rs1 = torch.native_layer_norm(h_tab, [d], blk.ln_1.weight, blk.ln_1.bias, eps)
    W, b = at.c_attn.weight, at.c_attn.bias  # (d, 3d): query, key, value
    kv_tab = torch.addmm(b[d:], x_tab, W[:, d:])  # (R, 2d)
    R = kv_tab.shape[0]
    K = kv_tab[:, :d].view(R, H, e).permute(1, 2, 0)  # (H, e, R)
    V = kv_tab[:, d:].view(R, H, e).transpose(0, 1)  # (H, R, e)
    x_last, h_last = x_tab.index_select(0, row_last), h_tab.index_select(0, row_last)
    q = torch.addmm(b[:d], x_last, W[:, :d]).mul_(scale).view(B, H, e).transpose(0, 1)
    # Attention of each last token to every table row, read at the rows its sequence has:
    # matmuls of (B, e) by (e, R) instead of products over (B, S, H, e) positions.
    idx = row[None].expand(H, B, S)
    att = torch.bmm(q, K).gather(2, idx).add_(mask)  # (H, B, S)
    p = torch.softmax(att, dim=-1)
    p_tab = p.new_zeros(H, B, R).scatter_add_(2, idx, p)  # (H, B, R)
    y = torch.bmm(p_tab, V).transpose(0, 1).reshape(B, d)
    h1 = torch.addmm(at.c_proj.bias, y, at.c_proj.weight).add_(h_last)
    x2, mu2, rs2 = torch.native_layer_norm(h1, [d], blk.ln_2.weight, blk.ln_2.bias, eps)
    u = torch.addmm(mlp.c_fc.bias, x2, mlp.c_fc.weight)  # (B, 4d)
    gu = F.gelu(u)
    h2 = torch.addmm(mlp.c_proj.bias, gu, mlp.c_proj.weight).add_(h1)
    f, muf, rsf = torch.native_layer_norm(h2, [d], t.ln_f.weight, t.ln_f.bias, eps)
    w_s = proxy.score.weight[0]  # (d,)
    s = f @ w_s  # (B,) the scores
    return SimpleNamespace(**{k: v for k, v in locals().items() if k != "proxy"})


def scores(proxy: GPTScorer, ids: torch.Tensor) -> torch.Tensor:
    """Scores of right-padded sequences (B, S) -> (B,), what proxy(ids) computes (up to
    rounding: other summation orders), by the same rewrites as the training step: the first
    block's keys and values once per (token, position) the batch uses (about 400 rows for
    1,024 of toy-bon's answers, against 14,336 positions)."""
    with torch.inference_mode():
        return _forward(proxy, sequences_batch(ids, proxy)).s


def sequences_batch(ids: torch.Tensor, proxy: GPTScorer) -> Batch:
    """A Batch of B right-padded sequences (B, S) for the proxy's forward pass alone, its table
    the (token, position) pairs they use."""
    config = proxy.config
    B, S = ids.shape
    pos = torch.arange(S, device=ids.device)
    pair = (ids * S + pos).view(-1)  # (B * S,)
    seen = torch.zeros(config.vocab_size * S, dtype=torch.long, device=ids.device)
    seen[pair] = 1
    used = seen.nonzero().view(-1)  # (R,) ascending
    row = seen.cumsum_(0).index_select(0, pair).view(B, S) - 1
    last = (pos * (ids != config.pad_token_id)).argmax(-1, keepdim=True)  # (B, 1)
    row, mask = _padded(row, last, proxy.score.weight.dtype)
    return Batch(row, row.gather(1, last).view(B), mask, used // S, used % S)


def _padded(row: torch.Tensor, last: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Table rows (..., S) with their columns padded to a multiple of 16 (the extra columns
    read row 0), and the attention mask added to the logits: 0 up to each sequence's last real
    token (`last`, (..., 1)), -inf after it (PAD) and in the extra columns. Why 16: softmax over
    a last dimension of 14 took 13x as long as over 16 (torch 2.13's CPU kernel vectorizes whole
    rows only)."""
    S = row.shape[-1]
    extra = -S % 16
    mask = torch.zeros((*row.shape[:-1], S + extra), dtype=dtype, device=row.device)
    mask.masked_fill_(torch.arange(S + extra, device=row.device) > last, -torch.inf)
    return F.pad(row, (0, extra)), mask


class FlatAdamW:
    """AdamW (no weight decay) over a module's parameters moved into one flat buffer: each
    parameter a view of it, each gradient a view of a second one, so a step is one call of the
    kernel torch.optim.AdamW(fused=True) runs (without the optimizer's per-step Python, about
    0.1 ms a step here). `release()` gives every parameter its own storage again (safetensors
    will not save views of one buffer)."""

    BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.AdamW's defaults, as train_proxy used them

    def __init__(self, module: torch.nn.Module, lr: float) -> None:
        self.params = list(module.parameters())
        total = sum(p.numel() for p in self.params)
        like = {"device": self.params[0].device, "dtype": self.params[0].dtype}
        self.flat = torch.empty(total, **like)
        self.flat_grad = torch.zeros(total, **like)
        self.exp_avg = torch.zeros(total, **like)
        self.exp_avg_sq = torch.zeros(total, **like)
        self.steps = torch.zeros((), dtype=torch.float32, device=like["device"])  # as AdamW's
        self.lr = lr
        self.grads: dict[torch.Tensor, torch.Tensor] = {}
        start = 0
        with torch.no_grad():
            for p in self.params:
                n = p.numel()
                self.flat[start : start + n].copy_(p.reshape(-1))
                p.data = self.flat[start : start + n].view_as(p)
                self.grads[p] = self.flat_grad[start : start + n].view_as(p)
                start += n

    def grad(self, p: torch.Tensor) -> torch.Tensor:
        """Where the gradient of parameter `p` goes (a view of the flat gradient)."""
        return self.grads[p]

    def step(self) -> None:
        self.steps += 1
        torch._fused_adamw_(
            [self.flat], [self.flat_grad], [self.exp_avg], [self.exp_avg_sq], [], [self.steps],
            amsgrad=False, lr=self.lr, beta1=self.BETAS[0], beta2=self.BETAS[1],
            weight_decay=0.0, eps=self.EPS, maximize=False,
        )  # fmt: skip

    def release(self) -> None:
        for p in self.params:
            p.data = p.data.clone()


class ProxyStep:
    """Forward, loss, backward and AdamW step of a one-block GPTScorer on minibatches of pairs
    of right-padded sequences. `prepare` the pairs once, plan each epoch's minibatches with
    `batches`, call with each; `release()` when training ends."""

    def __init__(self, proxy: GPTScorer, lr: float, score_l2: float) -> None:
        if not supports(proxy):
            raise ValueError("ProxyStep trains one-block GPTScorer proxies only")
        self.proxy, self.l2 = proxy, score_l2
        self.opt = FlatAdamW(proxy, lr)
        c = proxy.config
        self.d, self.H, self.eps = c.n_embd, c.n_head, c.layer_norm_epsilon
        self.pad = c.pad_token_id

    def release(self) -> None:
        self.opt.release()

    def prepare(self, chosen: torch.Tensor, rejected: torch.Tensor) -> None:
        """The pairs' sequences (M, S) each, right-padded, on the proxy's device. Each position
        is stored as its (token, position) pair's row in the table of the pairs these sequences
        use (335 in toy-bon's 32,000), a pair's two sequences side by side (M, 2, ...)."""
        ids = torch.stack([chosen, rejected], 1)  # (M, 2, S)
        S = ids.shape[-1]
        pos = torch.arange(S, device=ids.device)
        pair = ids * S + pos  # (M, 2, S) a (token, position) pair as one number
        used, row = torch.unique(pair, return_inverse=True)  # (R,), (M, 2, S)
        self.tokens, self.positions = used // S, used % S  # (R,) each
        last = (pos * (ids != self.pad)).argmax(-1, keepdim=True)  # (M, 2, 1) last real token
        self.last = last  # (M, 2, 1)
        self.row, self.mask = _padded(row, last, self.proxy.score.weight.dtype)  # (M, 2, S')

    def batches(self, order: torch.Tensor, batch_size: int) -> list[Batch]:
        """The minibatches of `order` (pair indices), `batch_size` pairs each (the last may be
        smaller), each with its own table: the rows its sequences use (about 180 of toy-bon's
        335 for 64 pairs, in the table's order) and every position renumbered into it. Half the
        rows halve the table's matmuls and the attention's (a step 1.78 -> 1.63 ms). Computed
        for a whole epoch at once: per minibatch it cost 0.1 ms a step."""
        with torch.inference_mode():
            return self._batches(order, batch_size)

    def _batches(self, order: torch.Tensor, batch_size: int) -> list[Batch]:
        R, n = len(self.tokens), len(order)
        count = -(-n // batch_size)
        rows = self.row.index_select(0, order)  # (n, 2, S)
        which = torch.arange(n, device=order.device).div_(batch_size, rounding_mode="floor")
        key = rows + (which * R).view(n, 1, 1)  # (n, 2, S): (minibatch, row) as one number
        seen = torch.zeros(count * R, dtype=torch.long, device=order.device)
        seen[key.view(-1)] = 1
        used = seen.nonzero().view(-1) % R  # every minibatch's rows, minibatch by minibatch
        sizes = seen.view(count, R).sum(1)  # (count,) rows of each minibatch's table
        starts = sizes.cumsum(0) - sizes
        # After the sizes: the running count of seen rows, in place, numbers them in order.
        local = seen.cumsum_(0).index_select(0, key.view(-1)).view(key.shape) - 1
        local -= starts.index_select(0, which).view(n, 1, 1)  # a row of its minibatch's table
        last = local.gather(2, self.last.index_select(0, order)).view(n, 2)
        mask = self.mask.index_select(0, order)
        tokens, positions = self.tokens.index_select(0, used), self.positions.index_select(0, used)
        S = rows.shape[-1]
        out = []
        for k, (a, r) in enumerate(zip(starts.tolist(), sizes.tolist(), strict=True)):
            sl = slice(k * batch_size, min(n, (k + 1) * batch_size))
            out.append(Batch(local[sl].view(-1, S), last[sl].view(-1), mask[sl].view(-1, S),
                             tokens[a : a + r], positions[a : a + r]))  # fmt: skip
        return out

    def __call__(self, batch: Batch) -> torch.Tensor:
        """One step on a minibatch (of `batches`): gradient, then AdamW. Returns the loss
        before the update (see gradient)."""
        loss = self.gradient(batch)
        self.opt.step()
        return loss

    def gradient(self, batch: Batch | torch.Tensor) -> torch.Tensor:
        """The loss on a minibatch (of `batches`, or a tensor of pair indices), mean of -log
        sigmoid(r_chosen - r_rejected) + score_l2 * mean(r^2) (a 0-dim tensor), and its
        gradient in `opt.grad(p)` for every parameter p."""
        if isinstance(batch, torch.Tensor):
            (batch,) = self.batches(batch, len(batch))
        # inference_mode, not no_grad: no autograd bookkeeping on any tensor (7% of a step;
        # the same numbers). The loss it returns is an inference tensor (read it, don't train it).
        with torch.inference_mode():
            return self._forward_backward(batch)

    def _forward_backward(self, batch: Batch) -> torch.Tensor:
        """Loss, and every gradient into the flat buffer."""
        row, row_last, tokens, positions = batch.row, batch.row_last, batch.tokens, batch.positions
        t, g = self.proxy.transformer, self.opt.grad
        blk = t.h[0]
        at, mlp = blk.attn, blk.mlp
        d, H = self.d, self.H
        e = d // H
        B = row.shape[0]
        M = B // 2
        scale = e**-0.5
        v = _forward(self.proxy, batch)
        h_tab, x_tab, mu1, rs1, W, b = v.h_tab, v.x_tab, v.mu1, v.rs1, v.W, v.b
        R, K, V, x_last, q, idx, p, p_tab = v.R, v.K, v.V, v.x_last, v.q, v.idx, v.p, v.p_tab
        y, h1, x2, mu2, rs2, u, gu, h2 = v.y, v.h1, v.x2, v.mu2, v.rs2, v.u, v.gu, v.h2
        f, muf, rsf, w_s, s = v.f, v.muf, v.rsf, v.w_s, v.s
        pairs = s.view(M, 2)
        margin = pairs[:, 0] - pairs[:, 1]
        loss = -F.logsigmoid(margin).mean() + self.l2 * s.pow(2).mean()

        # ---- backward ----
        ds = s * (2 * self.l2 / B)  # d(l2 * mean(s^2)) / ds
        dm = torch.sigmoid(-margin).div_(-M)  # d(-mean log sigmoid(margin)) / d margin
        ds2 = ds.view(M, 2)
        ds2[:, 0] += dm
        ds2[:, 1] -= dm
        torch.mv(f.t(), ds, out=g(self.proxy.score.weight)[0])
        dh2 = self._norm_backward(t.ln_f, torch.outer(ds, w_s), h2, muf, rsf)
        du = torch.ops.aten.gelu_backward(self._linear_backward(mlp.c_proj, gu, dh2), u)
        dh1 = self._norm_backward(blk.ln_2, self._linear_backward(mlp.c_fc, x2, du), h1, mu2, rs2)
        dh1.add_(dh2)  # the residual around the MLP
        dy = self._linear_backward(at.c_proj, y, dh1).view(B, H, e).transpose(0, 1)  # (H, B, e)
        dp = torch.bmm(dy, V.transpose(1, 2)).gather(2, idx)  # (H, B, S)
        datt = torch._softmax_backward_data(dp, p, 2, p.dtype)
        datt_tab = torch.zeros_like(p_tab).scatter_add_(2, idx, datt)  # (H, B, R)
        dq = torch.bmm(datt_tab, K.transpose(1, 2)).transpose(0, 1).reshape(B, d).mul_(scale)
        dk = torch.bmm(datt_tab.transpose(1, 2), q)  # (H, R, e)
        dv = torch.bmm(p_tab.transpose(1, 2), dy)  # (H, R, e)
        dkv_tab = torch.cat([dk.transpose(0, 1).reshape(R, d), dv.transpose(0, 1).reshape(R, d)], 1)
        dW, db = g(W), g(b)
        dW[:, d:].copy_(x_tab.t() @ dkv_tab)  # columns of W: not contiguous, so no out=
        dW[:, :d].copy_(x_last.t() @ dq)
        torch.sum(dkv_tab, 0, out=db[d:])
        torch.sum(dq, 0, out=db[:d])
        dx_tab = (dkv_tab @ W[:, d:].t()).index_add_(0, row_last, dq @ W[:, :d].t())  # (R, d)
        dh_tab = self._norm_backward(blk.ln_1, dx_tab, h_tab, mu1, rs1)
        dh_tab.index_add_(0, row_last, dh1)  # the residual around the attention
        g(t.wte.weight).zero_().index_add_(0, tokens, dh_tab)
        g(t.wpe.weight).zero_().index_add_(0, positions, dh_tab)
        return loss

    def _linear_backward(self, layer, x: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """A Conv1D y = x W + b on (B, in): its weight and bias gradients into the flat buffer,
        and the gradient of x returned."""
        torch.mm(x.t(), dy, out=self.opt.grad(layer.weight))
        torch.sum(dy, 0, out=self.opt.grad(layer.bias))
        return dy @ layer.weight.t()

    def _norm_backward(self, norm, dy, x, mean, rstd) -> torch.Tensor:
        """A LayerNorm's weight and bias gradients into the flat buffer; the gradient of its
        input returned."""
        dx, dw, db = torch.ops.aten.native_layer_norm_backward(
            dy, x, [self.d], mean, rstd, norm.weight, norm.bias, _ALL
        )
        self.opt.grad(norm.weight).copy_(dw)
        self.opt.grad(norm.bias).copy_(db)
        return dx
