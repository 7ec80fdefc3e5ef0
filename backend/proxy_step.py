"""A Bradley-Terry training step of a one-block toy proxy with its backward pass written out.

Why: a toy proxy (backend/tinygpt.py GPTScorer with one block, width 64, 14-token sequences) is
far too small for torch's autograd. Its step through autograd spent most of its time in
bookkeeping and small kernels (zero fills of slice backwards, the CPU attention kernel for one
query, the optimizer's per-tensor loop), not in the matmuls: 3.1 ms a step of 64 pairs on one
core, 1.76 ms here. This computes the same function and the same gradient (in float64 the two
trainings agree to 3e-10 after toy-bon's 2,000 steps: tests/test_proxy_step.py), with three
exact rewrites:

- The first block reads the sum of a token's and a position's embedding, so its layer norm and
  its key and value projections depend on the (token, position) pair alone: they are computed
  once per step for each pair the training sequences use (a table of R rows: 335 for toy-bon's
  32,000 sequences) instead of for every position of every sequence (2B * S = 1,792 rows for a
  minibatch of 64 pairs). The backward adds the gradients back into that table.
- The score reads the last token only, so the query, the attention and everything after it are
  computed at that one position (GPTScorer does the same), as matmuls of the B last tokens'
  queries by the table's keys, read at the rows each sequence holds.
- The parameters are views of one flat buffer and their gradients of another, so AdamW is one
  fused call over one tensor (torch's fused AdamW, element by element: the same arithmetic).

Rounding differs from autograd's (other summation orders), and training amplifies it: a
trained proxy's scores move by rounding (backend.ARITHMETIC["proxies"], in every proxy's cache
key). Shapes: B sequences (chosen then rejected), S positions, d width, H heads, e = d / H, R
table rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from backend.tinygpt import GPTScorer

_ALL = [True, True, True]


def supports(proxy) -> bool:
    """Toy proxies of one block (the default capacity); others train through autograd."""
    return isinstance(proxy, GPTScorer) and proxy.config.n_layer == 1


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
    of right-padded sequences. `prepare` the pairs once, then call with a minibatch's pair
    indices; `release()` when training ends."""

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
        """The pairs' sequences (M, S) each, right-padded, on the proxy's device. The table
        holds the (token, position) pairs these sequences use (335 in toy-bon's 32,000), and
        each position is stored as its row in it."""
        ids = torch.stack([chosen, rejected])  # (2, M, S)
        S = ids.shape[-1]
        pos = torch.arange(S, device=ids.device)
        pair = ids * S + pos  # (2, M, S) a (token, position) pair as one number
        used, row = torch.unique(pair, return_inverse=True)  # (R,), (2, M, S)
        self.tokens, self.positions = used // S, used % S  # (R,) each
        last = (pos * (ids != self.pad)).argmax(-1, keepdim=True)  # (2, M, 1) last real token
        self.row_last = row.gather(-1, last)[..., 0]  # (2, M)
        # Attention mask, added to the logits: positions after the last token (PAD) get none.
        # Softmax over a last dimension of 14 took 13x as long as over 16 (torch 2.13's CPU
        # kernel vectorizes whole rows only): the columns are padded to a multiple of 16.
        extra = -S % 16
        self.row = F.pad(row, (0, extra))  # (2, M, S + extra), the extra columns read row 0
        dtype = self.proxy.score.weight.dtype
        self.mask = F.pad(torch.zeros(ids.shape, dtype=dtype, device=ids.device), (0, extra))
        self.mask.masked_fill_(torch.arange(S + extra, device=ids.device) > last, -torch.inf)

    def __call__(self, mb: torch.Tensor) -> torch.Tensor:
        """One step on the pairs `mb` (indices into the prepared pairs): gradient, then AdamW.
        Returns the loss before the update (see gradient)."""
        loss = self.gradient(mb)
        self.opt.step()
        return loss

    def gradient(self, mb: torch.Tensor) -> torch.Tensor:
        """The loss on the pairs `mb`, mean of -log sigmoid(r_chosen - r_rejected) + score_l2 *
        mean(r^2) (a 0-dim tensor), and its gradient in `opt.grad(p)` for every parameter p."""
        S = self.row.shape[-1]
        row = self.row[:, mb].reshape(-1, S)  # (B, S): the minibatch's chosen, then rejected
        with torch.no_grad():
            return self._forward_backward(
                row, self.row_last[:, mb].reshape(-1), self.mask[:, mb].reshape(-1, S)
            )

    def _forward_backward(self, row, row_last, mask):
        """Loss, and every gradient into the flat buffer: rows (B, S), last rows (B,), mask
        (B, S)."""
        t, g = self.proxy.transformer, self.opt.grad
        blk = t.h[0]
        at, mlp = blk.attn, blk.mlp
        d, H, eps = self.d, self.H, self.eps
        e = d // H
        B, S = row.shape
        M = B // 2
        scale = e**-0.5

        # ---- forward ----
        # The table: embedding sum, ln_1, keys and values of every used (token, position).
        h_tab = t.wte.weight.index_select(0, self.tokens) + t.wpe.weight.index_select(
            0, self.positions
        )  # (R, d)
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
        w_s = self.proxy.score.weight[0]  # (d,)
        s = f @ w_s  # (B,) the scores
        margin = s[:M] - s[M:]
        loss = -F.logsigmoid(margin).mean() + self.l2 * s.pow(2).mean()

        # ---- backward ----
        ds = s * (2 * self.l2 / B)  # d(l2 * mean(s^2)) / ds
        dm = torch.sigmoid(-margin).div_(-M)  # d(-mean log sigmoid(margin)) / d margin
        ds[:M] += dm
        ds[M:] -= dm
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
        g(t.wte.weight).zero_().index_add_(0, self.tokens, dh_tab)
        g(t.wpe.weight).zero_().index_add_(0, self.positions, dh_tab)
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
