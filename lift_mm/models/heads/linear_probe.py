"""Class-balanced multinomial logistic regression in torch, for LIFT's linear-probe head initialisation."""
from typing import Tuple

import torch
from torch.nn import functional as F


def fit_balanced_logistic_regression(features: torch.Tensor,
                                     labels: torch.Tensor,
                                     num_classes: int,
                                     C: float = 1.0,
                                     max_iter: int = 100,
                                     tol: float = 1e-4) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fit ``softmax(W x + b)`` to ``labels`` with class-balanced sample weights and an L2 penalty on ``W``.

    LIFT fits scikit-learn's ``LogisticRegression(solver='lbfgs', penalty='l2', class_weight='balanced',
    max_iter=100)`` (C = 1). This solves the same problem with torch's L-BFGS, on the features' device and dtype:
    it minimises

    ``(1 / n) sum_i s_i CE(W x_i + b, y_i) + ||W||^2 / (2 C n)``,  with ``s_i = n / (K n_{y_i})``,

    which is scikit-learn's objective ``C sum_i s_i CE_i + ||W||^2 / 2`` divided by ``C n`` (the same minimiser;
    the scaling keeps gradients of order one, so ``tol`` means the same for any n). ``n_k`` is the number of
    samples of class k and K the number of classes, so every class weighs the same in total; the bias is not
    penalised. The problem is strictly convex in ``W``; L-BFGS starts from zero and stops after ``max_iter``
    iterations, when no gradient entry exceeds ``tol`` or when the loss stops changing at the features' precision,
    as scikit-learn's solver does.

    Args:
        features (torch.Tensor): Features of shape (n, d).
        labels (torch.Tensor): Class indices of shape (n, ).
        num_classes (int): K. Every class needs at least one sample.
        C (float): Inverse strength of the L2 penalty. Defaults to 1.0.
        max_iter (int): Most L-BFGS iterations. Defaults to 100.
        tol (float): Stop when the largest gradient entry is at most this. Defaults to 1e-4.

    Returns:
        Tuple[torch.Tensor, torch.Tensor]: ``W`` of shape (K, d) and ``b`` of shape (K, ).
    """
    if C <= 0 or max_iter < 1 or tol < 0:
        raise ValueError(f'Linear probe: need C > 0, max_iter >= 1 and tol >= 0; got C={C}, max_iter={max_iter}, '
                         f'tol={tol}.')
    counts = torch.bincount(labels, minlength=num_classes)
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f'Linear probe: classes {missing[:10]} ({len(missing)} in all) have no samples; '
                         'class-balanced weights need at least one sample of every class.')
    num_samples = labels.numel()
    sample_weights = num_samples / (num_classes * counts[labels].to(features.dtype))
    weight = features.new_zeros(num_classes, features.shape[1], requires_grad=True)
    bias = features.new_zeros(num_classes, requires_grad=True)
    # Like scikit-learn's solver, stop on the gradient or when the loss stalls at the dtype's precision.
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, tolerance_grad=tol,
                                  tolerance_change=64 * torch.finfo(features.dtype).eps, line_search_fn='strong_wolfe')

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        losses = F.cross_entropy(F.linear(features, weight, bias), labels, reduction='none')
        loss = (sample_weights * losses).sum() / num_samples + weight.pow(2).sum() / (2 * C * num_samples)
        loss.backward()
        return loss

    # Head initialisation runs under no_grad; the fit itself needs gradients.
    with torch.enable_grad():
        optimizer.step(objective)
    return weight.detach(), bias.detach()
