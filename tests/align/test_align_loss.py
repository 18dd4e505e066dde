"""dpo_loss against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from slamlm.align.loss import dpo_loss

# two pairs, beta = 0.1
PC, PR = [-10.0, -20.0], [-12.0, -15.0]  # policy chosen / rejected summed log-probs
RC, RR = [-11.0, -18.0], [-11.0, -18.0]  # reference chosen / rejected
# pair 1: margin = 0.1 * ((-10 + 11) - (-12 + 11)) = 0.1 * (1 + 1) = 0.2
# pair 2: margin = 0.1 * ((-20 + 18) - (-15 + 18)) = 0.1 * (-2 - 3) = -0.5
# -logsigmoid(0.2) = log(1 + e^-0.2) = log(1.8187307531) = 0.5981388693
# -logsigmoid(-0.5) = log(1 + e^0.5) = log(2.6487212707) = 0.9740769842
LOSS = (0.5981388693 + 0.9740769842) / 2  # 0.78610792675


def _t(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def test_dpo_loss_hand_values():
    pc, pr, rc, rr = _t(PC), _t(PR), _t(RC), _t(RR)
    loss, m = dpo_loss(pc, pr, rc, rr, beta=0.1)
    assert loss.item() == pytest.approx(0.78610792675, abs=1e-9)
    # the same number from the formula written out per pair (margins from the inputs)
    margins = [0.1 * ((a - c) - (b - d)) for a, b, c, d in zip(PC, PR, RC, RR)]
    assert margins == pytest.approx([0.2, -0.5])
    assert loss.item() == pytest.approx(
        sum(math.log1p(math.exp(-mg)) for mg in margins) / 2, abs=1e-12)
    assert loss.item() == pytest.approx(LOSS, abs=1e-9)
    assert m["reward_accuracy"] == 0.5  # pair 1 right, pair 2 wrong
    assert m["reward_chosen"] == pytest.approx((0.1 * 1 + 0.1 * -2) / 2)  # -0.05
    assert m["reward_rejected"] == pytest.approx((0.1 * -1 + 0.1 * 3) / 2)  # 0.1
    assert m["reward_margin"] == pytest.approx((0.2 - 0.5) / 2)  # -0.15
    assert m["logp_chosen"] == -15.0 and m["logp_rejected"] == -13.5
    assert m["sft_loss"] == 0.0
    loss.backward()
    # d loss / d pc_i = -beta * sigmoid(-margin_i) / N ; sigmoid(-0.2) = 0.45016600268
    assert pc.grad[0].item() == pytest.approx(-0.1 * 0.45016600268 / 2, abs=1e-9)
    # sigmoid(0.5) = 0.62245933120 ; rejected gets the opposite sign
    assert pr.grad[1].item() == pytest.approx(0.1 * 0.62245933120 / 2, abs=1e-9)
    assert rc.grad is None or torch.all(rc.grad == 0)  # reference is detached


def test_dpo_loss_with_sft_term():
    lengths = torch.tensor([5, 10])
    loss, m = dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), beta=0.1, sft_weight=0.5,
                       chosen_lengths=lengths)
    # per-token NLL of chosen: 10/5 = 2, 20/10 = 2 -> mean 2 ; 0.5 * 2 = 1
    assert m["sft_loss"] == pytest.approx(2.0)
    assert loss.item() == pytest.approx(0.78610792675 + 1.0, abs=1e-9)
    assert m["dpo_loss"] == pytest.approx(0.78610792675, abs=1e-9)
    with pytest.raises(ValueError, match="chosen_lengths"):
        dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), sft_weight=0.5)


def test_dpo_loss_equal_policy_and_reference_is_log2_and_ties_count_half():
    x = torch.tensor([-3.0, -7.0])
    loss, m = dpo_loss(x, x, x, x, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2.0))
    assert m["reward_accuracy"] == 0.5 and m["reward_margin"] == 0.0


def test_dpo_loss_beta_scales_margin_and_shapes_checked():
    _, m1 = dpo_loss(torch.tensor([0.0]), torch.tensor([-1.0]), torch.zeros(1), torch.zeros(1),
                     beta=0.5)
    assert m1["reward_margin"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one shape"):
        dpo_loss(torch.zeros(2), torch.zeros(3), torch.zeros(2), torch.zeros(2))
