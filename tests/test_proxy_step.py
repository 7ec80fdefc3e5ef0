"""backend/proxy_step.py against autograd: the written-out backward of a one-block toy proxy gives
autograd's gradient, its flat AdamW is torch's fused AdamW bit for bit, and training with it ends
where autograd's training ends (up to rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.assets import load_state, save_state
from backend.config import PreferenceConfig, RewardModelConfig, SftConfig
from backend.preferences import make_preferences
from backend.proxy_step import FlatAdamW, ProxyStep, scores, supports
from backend.reward_models import build_proxy, train_proxy
from backend.worlds.registry import get_world
from backend.worlds.sft import load_sft_policy

L2 = 1e-3


@pytest.fixture(scope="module")
def toy():
    """The toy world, its shipped SFT policy, and 512 training pairs of the policy's answers
    (right-padded, of many lengths; 25% label noise) with 256 held-out ones."""
    world = get_world("toy-lists")
    policy = load_sft_policy(world, SftConfig())[0]
    cfg = PreferenceConfig(pairs=512, eval_pairs=256, label_noise=0.25)
    train, heldout = make_preferences(world, policy, cfg, np.random.SeedSequence(3))
    return world, policy, train, heldout


def sequences(world, split) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt + chosen and prompt + rejected token ids, (M, S) each."""
    prompts = world.prompt_ids(split.prompt_idx)
    answers = (split.chosen, split.rejected)
    return tuple(torch.cat([prompts, torch.as_tensor(a)], 1) for a in answers)


def autograd_step(proxy, opt, chosen, rejected):
    scores = proxy(torch.cat([chosen, rejected]))
    r_c, r_r = scores.chunk(2)
    loss = -F.logsigmoid(r_c - r_r).mean() + L2 * scores.pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    return loss.detach()


def test_one_step_gives_autograds_loss_and_gradient(toy):
    world, policy, train, _ = toy
    chosen, rejected = sequences(world, train)
    assert len(set((chosen != 0).sum(1).tolist())) > 2  # sequences of several lengths
    ref, ours = build_proxy(policy, 1, 5), build_proxy(policy, 1, 5)
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-3, weight_decay=0.0, fused=True)
    step = ProxyStep(ours, 1e-3, L2)
    step.prepare(chosen, rejected)
    mb = torch.arange(40, 104)
    want = autograd_step(ref, opt, chosen[mb], rejected[mb])
    step.opt.flat_grad.fill_(torch.nan)  # an entry the step does not write stays NaN
    got = step.gradient(mb)
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    # float32 sums in other orders: within 1e-5 of the largest gradient of all (the score
    # head's, 0.03; measured 7.5e-6 there, under 4e-7 elsewhere). Against each tensor's own
    # largest entry would not do: some are sums that cancel (ln_f's bias: 2e-5 from 1e-2s).
    scale = max(float(p.grad.abs().max()) for p in ref.parameters())
    for (name, p), q in zip(ref.named_parameters(), ours.parameters(), strict=True):
        assert torch.allclose(step.opt.grad(q), p.grad, rtol=0, atol=2e-5 * scale), name


def test_the_flat_adamw_is_torchs_fused_adamw_bit_for_bit(toy):
    policy = toy[1]
    ref, ours = build_proxy(policy, 1, 0), build_proxy(policy, 1, 0)
    opt = torch.optim.AdamW(ref.parameters(), lr=3e-3, weight_decay=0.0, fused=True)
    flat = FlatAdamW(ours, 3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        for p, q in zip(ref.parameters(), ours.parameters(), strict=True):
            p.grad = torch.randn(p.shape, generator=gen)
            flat.grad(q).copy_(p.grad)
        opt.step()
        flat.step()
    flat.release()
    for p, q in zip(ref.parameters(), ours.parameters(), strict=True):
        assert torch.equal(p, q)
        assert q.untyped_storage().nbytes() == q.numel() * 4  # its own storage again


def test_training_ends_where_autograd_training_ends(toy, tmp_path):
    """Two epochs of train_proxy (the written-out step) against the same training through
    autograd, in float64 so that rounding cannot hide a wrong term: the same losses and
    held-out scores to 1e-10 (float32 training drifts apart by rounding, chaotically: on
    toy-bon's 2,000 steps the two agree to 3e-10 in float64, to 0.4 in float32); the proxy
    saves and loads."""
    world, policy, train, heldout = toy
    cfg = RewardModelConfig(epochs=2, batch_size=32)
    ours, ref = build_proxy(policy, 1, 7).double(), build_proxy(policy, 1, 7).double()
    assert supports(ours) and not supports(build_proxy(policy, 2, 7))
    got = train_proxy(ours, world, train, cfg, torch.Generator().manual_seed(1), heldout)
    opt = torch.optim.AdamW(ref.parameters(), lr=cfg.lr, weight_decay=0.0, fused=True)
    chosen, rejected = sequences(world, train)
    gen, losses = torch.Generator().manual_seed(1), []
    for _ in range(cfg.epochs):
        order, total = torch.randperm(len(train), generator=gen), 0.0
        for start in range(0, len(train), cfg.batch_size):
            mb = order[start : start + cfg.batch_size]
            total += float(autograd_step(ref, opt, chosen[mb], rejected[mb])) * len(mb)
            opt.step()
        losses.append(total / len(train))
    assert got["train_loss"] == pytest.approx(losses, rel=1e-6)  # summed in float32 there
    assert got["train_loss"][1] < got["train_loss"][0]  # it learns
    idx = heldout.prompt_idx
    ids = torch.cat([world.prompt_ids(idx), torch.as_tensor(heldout.chosen)], 1)
    with torch.no_grad():
        want, ours_scores = ref(ids), ours(ids)
    assert ours_scores.dtype == torch.float64
    assert torch.allclose(ours_scores, want, rtol=0, atol=1e-10 * float(want.abs().max()))
    save_state(ours, tmp_path / "p.safetensors")  # every parameter its own storage again
    back = build_proxy(policy, 1, 0).double()
    load_state(back, tmp_path / "p.safetensors")
    with torch.no_grad():
        assert torch.equal(back(ids), ours_scores)


def test_an_epochs_minibatches_give_each_minibatchs_own_gradient(toy):
    """ProxyStep.batches plans a whole epoch at once (each minibatch its own table, the last one
    smaller): each planned minibatch gives the gradient of the same pairs planned alone."""
    world, policy, train, _ = toy
    chosen, rejected = sequences(world, train)
    step = ProxyStep(build_proxy(policy, 1, 2), 1e-3, L2)
    step.prepare(chosen, rejected)
    order = torch.randperm(100, generator=torch.Generator().manual_seed(4))
    planned = step.batches(order, 32)
    assert [b.pairs for b in planned] == [32, 32, 32, 4]
    for k, batch in enumerate(planned):
        assert len(batch.tokens) < len(step.tokens)  # a table of its own rows only
        got = float(step.gradient(batch))
        grad = step.opt.flat_grad.clone()
        want = float(step.gradient(order[32 * k : 32 * (k + 1)]))
        assert got == want and torch.equal(grad, step.opt.flat_grad)


def test_scores_are_the_proxys_forward(toy):
    """proxy_step.scores (the table of (token, position) rows) against GPTScorer's forward, on
    answers of many lengths: equal to 1e-12 in float64, to 1e-6 of the largest in float32."""
    world, policy, _, heldout = toy
    proxy = build_proxy(policy, 1, 3)
    with torch.no_grad():  # a proxy whose every weight matters (not the SFT trunk as it is)
        for p in proxy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    ids = torch.cat(sequences(world, heldout))
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        model = proxy.to(dtype)
        with torch.no_grad():
            want = model(ids)
        got = scores(model, ids)
        assert got.dtype == dtype and got.shape == want.shape
        assert torch.allclose(got, want, rtol=0, atol=tol * float(want.abs().max())), dtype
