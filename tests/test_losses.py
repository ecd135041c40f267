"""Long-tail losses against their formulas, written out here independently on hand-made logits."""
import math

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from lift_mm.models.losses import (BalancedSoftmaxLoss, ClassBalancedLoss, GeneralizedReweightLoss, LADELoss, LDAMLoss,
                                   LogitAdjustedLoss, SoftmaxFocalLoss)

LOGITS = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-0.5, 1.5, 0.0], [1.0, -1.0, 2.0]]
LABELS = [0, 1, 2, 2]
COUNTS = [100, 10, 1]
COUNT_LOSSES = [LogitAdjustedLoss, BalancedSoftmaxLoss, LDAMLoss, ClassBalancedLoss, GeneralizedReweightLoss, LADELoss]


def logits(requires_grad=False):
    return torch.tensor(LOGITS, dtype=torch.float64, requires_grad=requires_grad)


def labels():
    return torch.tensor(LABELS)


def log_softmax_row(row):
    top = max(row)
    log_norm = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - log_norm for v in row]


def ce_rows(rows, targets):
    """Per-sample -log softmax(row)[y] for integer targets."""
    return [-log_softmax_row(row)[y] for row, y in zip(rows, targets)]


def shifted(rows, shift):
    return [[v + s for v, s in zip(row, shift)] for row in rows]


def softmax_grad(rows, targets, scale=1.0):
    """d/dz of sum_i CE(scale * rows_i, y_i) is scale * (softmax - onehot) per row."""
    grads = []
    for row, y in zip(rows, targets):
        probs = [math.exp(v) for v in log_softmax_row([scale * v for v in row])]
        grads.append([scale * (p - (j == y)) for j, p in enumerate(probs)])
    return np.array(grads)


def prior():
    return [n / sum(COUNTS) for n in COUNTS]


# ---------------------------------------------------------------- class counts protocol


def test_counts_missing_raises_with_hook_hint():
    loss = LogitAdjustedLoss()
    with pytest.raises(RuntimeError, match=r"custom_hooks=\[dict\(type='ClassCountsHook'\)\].*class_counts"):
        loss(logits(), labels())


def test_zero_count_names_class():
    with pytest.raises(ValueError, match=r'class_counts is 0 for class\(es\) \[1\].*-inf'):
        LogitAdjustedLoss(class_counts=[5, 0, 3])
    loss = LDAMLoss()
    with pytest.raises(ValueError, match=r'class\(es\) \[0, 2\]'):
        loss.set_class_counts(np.array([0, 4, 0]))


@pytest.mark.parametrize('counts, match', [([3, -1], 'non-negative whole'), ([2.5, 3], 'non-negative whole'),
                                           ([[1, 2]], '1-D'), ([], '1-D')])
def test_invalid_counts(counts, match):
    with pytest.raises(ValueError, match=match):
        BalancedSoftmaxLoss(class_counts=counts)


def test_counts_length_must_match_logits():
    with pytest.raises(ValueError, match='class_counts for 2 classes but the logits have 3'):
        LogitAdjustedLoss(class_counts=[4, 2])(logits(), labels())


def test_counts_buffer_not_persistent_and_follows_module():
    loss = LADELoss()
    assert loss.class_counts is None
    loss.set_class_counts(torch.tensor([100., 10., 1.]))
    assert dict(loss.named_buffers())['class_counts'].tolist() == COUNTS
    assert loss.state_dict() == {}
    loss.load_state_dict({}, strict=True)
    loss.half()
    assert loss.class_counts.dtype == torch.int64
    assert loss.get_class_counts(3, torch.device('meta')).device.type == 'meta'
    assert loss.class_counts.device.type == 'meta'
    loss.set_class_counts([7, 8, 9])
    assert loss.class_counts.device.type == 'meta'


# ---------------------------------------------------------------- LogitAdjustedLoss, BalancedSoftmaxLoss


@pytest.mark.parametrize('tau', [0.0, 1.0, 2.0])
def test_logit_adjusted_value_and_grad(tau):
    shift = [tau * math.log(p) for p in prior()]
    expected = sum(ce_rows(shifted(LOGITS, shift), LABELS)) / 4
    cls_score = logits(requires_grad=True)
    loss = LogitAdjustedLoss(tau=tau, class_counts=COUNTS)(cls_score, labels())
    loss.backward()
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(cls_score.grad.numpy(), softmax_grad(shifted(LOGITS, shift), LABELS) / 4, rtol=1e-10)


def test_logit_adjusted_soft_labels_and_reductions():
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6], [0.0, 0.0, 1.0]], dtype=torch.float64)
    adjusted = shifted(LOGITS, [math.log(p) for p in prior()])
    per_sample = [-sum(t * lp for t, lp in zip(trow, log_softmax_row(row)))
                  for trow, row in zip(soft.tolist(), adjusted)]
    loss = LogitAdjustedLoss(class_counts=COUNTS, loss_weight=2.0)
    assert loss(logits(), soft).item() == pytest.approx(2 * sum(per_sample) / 4, rel=1e-12)
    np.testing.assert_allclose(loss(logits(), soft, reduction_override='none').numpy(), 2 * np.array(per_sample))
    assert loss(logits(), soft, reduction_override='sum').item() == pytest.approx(2 * sum(per_sample))
    weight = torch.tensor([1.0, 0.0, 2.0, 1.0])
    weighted = sum(w * v for w, v in zip(weight.tolist(), per_sample))
    assert loss(logits(), soft, weight=weight, avg_factor=8).item() == pytest.approx(2 * weighted / 8)
    one_hot = torch.nn.functional.one_hot(labels(), 3)
    assert loss(logits(), one_hot).item() == pytest.approx(loss(logits(), labels()).item())


def test_balanced_softmax_adds_log_counts():
    expected = sum(ce_rows(shifted(LOGITS, [math.log(n) for n in COUNTS]), LABELS)) / 4
    loss = BalancedSoftmaxLoss(class_counts=COUNTS)
    assert loss(logits(), labels()).item() == pytest.approx(expected, rel=1e-12)
    # Softmax ignores the constant log(sum n), so it equals logit adjustment with tau = 1.
    assert expected == pytest.approx(LogitAdjustedLoss(class_counts=COUNTS)(logits(), labels()).item(), rel=1e-12)


# ---------------------------------------------------------------- SoftmaxFocalLoss


@pytest.mark.parametrize('gamma', [0.0, 1.0, 2.0])
def test_softmax_focal_value(gamma):
    expected = []
    for row, y in zip(LOGITS, LABELS):
        p_y = math.exp(log_softmax_row(row)[y])
        expected.append(-(1 - p_y)**gamma * math.log(p_y))
    loss = SoftmaxFocalLoss(gamma=gamma)
    assert loss(logits(), labels()).item() == pytest.approx(sum(expected) / 4, rel=1e-12)
    np.testing.assert_allclose(loss(logits(), labels(), reduction_override='none').numpy(), expected, rtol=1e-12)
    assert not hasattr(loss, 'set_class_counts')


def test_softmax_focal_grad_and_soft_labels():
    cls_score = logits(requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: SoftmaxFocalLoss(gamma=2.0)(z, labels()), (cls_score, ))
    soft = torch.tensor([[0.5, 0.5, 0.0]] * 4, dtype=torch.float64)
    expected = 0.0
    for row in LOGITS:
        log_p = log_softmax_row(row)
        expected -= sum(t * (1 - math.exp(lp))**2 * lp for t, lp in zip([0.5, 0.5, 0.0], log_p))
    assert SoftmaxFocalLoss()(logits(), soft).item() == pytest.approx(expected / 4, rel=1e-12)
    with pytest.raises(ValueError, match='gamma=-1'):
        SoftmaxFocalLoss(gamma=-1)


# ---------------------------------------------------------------- LDAMLoss


def ldam_expected_margins(max_margin=0.5):
    raw = [n**-0.25 for n in COUNTS]
    return [max_margin * r / max(raw) for r in raw]


def test_ldam_value_and_grad():
    margins = ldam_expected_margins()
    assert margins[2] == pytest.approx(0.5) and margins[0] == pytest.approx(0.5 / 100**0.25)
    scale = 30.0
    shifted_rows = [[v - (margins[y] if j == y else 0.0) for j, v in enumerate(row)] for row, y in zip(LOGITS, LABELS)]
    scaled_rows = [[scale * v for v in row] for row in shifted_rows]
    expected = sum(ce_rows(scaled_rows, LABELS)) / 4
    cls_score = logits(requires_grad=True)
    loss = LDAMLoss(class_counts=COUNTS)(cls_score, labels())
    loss.backward()
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(cls_score.grad.numpy(), softmax_grad(shifted_rows, LABELS, scale) / 4, rtol=1e-9,
                               atol=1e-12)


def test_ldam_prescaled_logits_scale_only_the_margin():
    head_scale = 25.0
    margins = ldam_expected_margins(0.3)
    rows = [[head_scale * v for v in row] for row in LOGITS]
    expected_rows = [[v - (head_scale * margins[y] if j == y else 0.0) for j, v in enumerate(row)]
                     for row, y in zip(rows, LABELS)]
    cls_score = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    loss = LDAMLoss(max_margin=0.3, scale=head_scale, logits_scaled=True, class_counts=COUNTS)(cls_score, labels())
    loss.backward()
    assert loss.item() == pytest.approx(sum(ce_rows(expected_rows, LABELS)) / 4, rel=1e-12)
    np.testing.assert_allclose(cls_score.grad.numpy(), softmax_grad(expected_rows, LABELS) / 4, rtol=1e-9, atol=1e-12)
    unscaled = LDAMLoss(max_margin=0.3, scale=head_scale, class_counts=COUNTS)(logits(), labels())
    assert loss.item() == pytest.approx(unscaled.item(), rel=1e-12)


def test_ldam_labels():
    loss = LDAMLoss(class_counts=COUNTS)
    one_hot = torch.nn.functional.one_hot(labels(), 3).double()
    assert loss(logits(), one_hot).item() == pytest.approx(loss(logits(), labels()).item())
    with pytest.raises(ValueError, match='LDAMLoss needs one true class.*Mixup'):
        loss(logits(), torch.full((4, 3), 1 / 3, dtype=torch.float64))
    with pytest.raises(ValueError, match='max_margin >= 0 and scale > 0'):
        LDAMLoss(scale=0)


# ---------------------------------------------------------------- ClassBalancedLoss, GeneralizedReweightLoss


def cb_expected_weights(beta):
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    return [3 * w / sum(raw) for w in raw]


def grw_expected_weights(exp_scale):
    raw = [(1 / p)**exp_scale for p in prior()]
    return [3 * w / sum(raw) for w in raw]


@pytest.mark.parametrize('loss_cls, kwargs, weights', [
    (ClassBalancedLoss, dict(beta=0.9999), cb_expected_weights(0.9999)),
    (ClassBalancedLoss, dict(beta=0.9), cb_expected_weights(0.9)),
    (GeneralizedReweightLoss, dict(exp_scale=1.0), grw_expected_weights(1.0)),
    (GeneralizedReweightLoss, dict(exp_scale=0.5), grw_expected_weights(0.5)),
])
def test_class_weighted_value_and_grad(loss_cls, kwargs, weights):
    assert sum(weights) == pytest.approx(3)
    per_sample = [weights[y] * v for y, v in zip(LABELS, ce_rows(LOGITS, LABELS))]
    total_weight = sum(weights[y] for y in LABELS)
    sample_grad = softmax_grad(LOGITS, LABELS) * np.array([weights[y] for y in LABELS])[:, None]

    # Default: PyTorch's weighted mean, as LIFT computes it.
    cls_score = logits(requires_grad=True)
    loss = loss_cls(class_counts=COUNTS, **kwargs)(cls_score, labels(), avg_factor=4)
    loss.backward()
    assert loss.item() == pytest.approx(sum(per_sample) / total_weight, rel=1e-9)
    np.testing.assert_allclose(cls_score.grad.numpy(), sample_grad / total_weight, rtol=1e-9)

    # mmpretrain's convention: divide by avg_factor.
    cls_score = logits(requires_grad=True)
    loss = loss_cls(avg_by_class_weight=False, class_counts=COUNTS, **kwargs)(cls_score, labels(), avg_factor=4)
    loss.backward()
    assert loss.item() == pytest.approx(sum(per_sample) / 4, rel=1e-9)
    np.testing.assert_allclose(cls_score.grad.numpy(), sample_grad / 4, rtol=1e-9)

    none = loss_cls(class_counts=COUNTS, **kwargs)(logits(), labels(), reduction_override='none')
    np.testing.assert_allclose(none.numpy(), per_sample, rtol=1e-9)


def test_class_weighted_soft_labels_and_sample_weights():
    weights = grw_expected_weights(1.0)
    soft = [[0.7, 0.3, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6], [0.0, 0.0, 1.0]]
    sample_weight = [1.0, 2.0, 0.5, 1.0]
    numerator = denominator = 0.0
    for row, trow, s in zip(LOGITS, soft, sample_weight):
        log_p = log_softmax_row(row)
        numerator -= s * sum(w * t * lp for w, t, lp in zip(weights, trow, log_p))
        denominator += s * sum(w * t for w, t in zip(weights, trow))
    loss = GeneralizedReweightLoss(class_counts=COUNTS)(logits(), torch.tensor(soft, dtype=torch.float64),
                                                        weight=torch.tensor(sample_weight))
    assert loss.item() == pytest.approx(numerator / denominator, rel=1e-9)


def test_class_balanced_beta_range():
    with pytest.raises(ValueError, match=r'beta=1.0 must be in \[0, 1\)'):
        ClassBalancedLoss(beta=1.0)
    equal = ClassBalancedLoss(beta=0.0, class_counts=COUNTS)(logits(), labels())
    assert equal.item() == pytest.approx(sum(ce_rows(LOGITS, LABELS)) / 4, rel=1e-12)


# ---------------------------------------------------------------- LADELoss


def lade_reference(z, y, counts, remine_lambda, estim_loss_weight):
    """LADE as written in LADELoss's docstring, with explicit loops over classes and samples."""
    z = np.asarray(z, dtype=np.float64)
    num_samples, num_classes = z.shape
    pi = np.asarray(counts, dtype=np.float64) / np.sum(counts)
    ce = 0.0
    for i in range(num_samples):
        adjusted = z[i] + np.log(pi)
        ce -= adjusted[y[i]] - np.log(np.sum(np.exp(adjusted)))
    ce /= num_samples
    reg = 0.0
    for j in range(num_classes):
        members = [i for i in range(num_samples) if y[i] == j]
        a_j = sum(z[i, j] for i in members) / len(members) if members else 0.0
        b_j = np.log(np.mean([np.exp(z[i, j] - np.log(pi[j]) + np.log(1.0 / num_classes)) for i in range(num_samples)]))
        reg -= pi[j] * (a_j - b_j - remine_lambda * b_j**2)
    return ce + estim_loss_weight * reg


@pytest.mark.parametrize('targets, remine_lambda, estim_loss_weight', [
    (LABELS, 0.1, 0.1),
    ([0, 0, 2, 2], 0.1, 0.1),  # class 1 absent from the batch
    (LABELS, 0.5, 1.0),
])
def test_lade_matches_reference(targets, remine_lambda, estim_loss_weight):
    cls_score = logits(requires_grad=True)
    loss = LADELoss(remine_lambda=remine_lambda, estim_loss_weight=estim_loss_weight,
                    class_counts=COUNTS)(cls_score, torch.tensor(targets), avg_factor=4)
    expected = lade_reference(LOGITS, targets, COUNTS, remine_lambda, estim_loss_weight)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    # Central differences of the reference formula.
    numeric = np.zeros((4, 3))
    for i in range(4):
        for j in range(3):
            plus, minus = np.array(LOGITS), np.array(LOGITS)
            plus[i, j] += 1e-6
            minus[i, j] -= 1e-6
            numeric[i, j] = (lade_reference(plus, targets, COUNTS, remine_lambda, estim_loss_weight) -
                             lade_reference(minus, targets, COUNTS, remine_lambda, estim_loss_weight)) / 2e-6
    np.testing.assert_allclose(cls_score.grad.numpy(), numeric, rtol=1e-6, atol=1e-9)


def test_lade_one_hot_labels_and_reduction():
    loss = LADELoss(class_counts=COUNTS)
    one_hot = torch.nn.functional.one_hot(labels(), 3).double()
    assert loss(logits(), one_hot).item() == pytest.approx(loss(logits(), labels()).item(), rel=1e-12)
    with pytest.raises(ValueError, match="reduction='none'.*whole batch"):
        loss(logits(), labels(), reduction_override='none')


# ---------------------------------------------------------------- interface shared by all losses


@pytest.mark.parametrize('loss_cls', COUNT_LOSSES + [SoftmaxFocalLoss])
def test_label_and_reduction_errors(loss_cls):
    kwargs = {} if loss_cls is SoftmaxFocalLoss else dict(class_counts=COUNTS)
    loss = loss_cls(**kwargs)
    with pytest.raises(ValueError, match='integer class indices'):
        loss(logits(), torch.tensor([0.0, 1.0, 2.0, 2.0]))
    with pytest.raises(ValueError, match=r'outside \[0, 2\]'):
        loss(logits(), torch.tensor([0, 1, 3, 2]))
    with pytest.raises(ValueError, match='3 entries but cls_score has 4'):
        loss(logits(), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r'shape \(N, C\)'):
        loss(logits()[0], labels()[:1])
    with pytest.raises(ValueError, match="reduction='avg'"):
        loss(logits(), labels(), reduction_override='avg')
    with pytest.raises(ValueError, match="reduction='avg'"):
        loss_cls(reduction='avg', **kwargs)


@pytest.mark.parametrize('loss_cls', COUNT_LOSSES + [SoftmaxFocalLoss])
def test_half_logits_give_float32_loss(loss_cls):
    kwargs = {} if loss_cls is SoftmaxFocalLoss else dict(class_counts=COUNTS)
    loss = loss_cls(**kwargs)
    half = loss(logits().half(), labels())
    assert half.dtype in (torch.float32, torch.float16)
    assert half.item() == pytest.approx(loss(logits(), labels()).item(), rel=2e-2)
    if loss_cls is not SoftmaxFocalLoss:
        assert half.dtype == torch.float32


@pytest.mark.parametrize('loss_type', [cls.__name__ for cls in COUNT_LOSSES] + ['SoftmaxFocalLoss'])
def test_usable_in_mmpretrain_head_config(loss_type):
    loss_cfg = dict(type=loss_type)
    if loss_type != 'SoftmaxFocalLoss':
        loss_cfg['class_counts'] = COUNTS
    head = MODELS.build(dict(type='LinearClsHead', num_classes=3, in_channels=5, loss=loss_cfg))
    feats = (torch.randn(4, 5), )
    samples = [DataSample().set_gt_label(y) for y in LABELS]
    losses = head.loss(feats, samples)
    assert torch.isfinite(losses['loss'])
    losses['loss'].backward()
    assert head.fc.weight.grad is not None
