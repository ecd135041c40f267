"""Counting parameters per light-module kind, for logs and tools/analysis/count_params.py."""
from collections import OrderedDict
from typing import Dict

from torch import nn


def count_parameters(model: nn.Module) -> Dict[str, int]:
    """Trainable parameters by light-module kind, the rest by top-level child, plus totals.

    Light modules are found in every module that holds them (``light_modules``) next to their host
    (``light_module_host()``); host weights a kind trains in place (bias, norm, full tuning) count for that kind.

    Returns:
        dict: ``{kind or child name: trainable count, ..., 'trainable': n, 'total': n}``.
    """
    counts: Dict[str, int] = OrderedDict()
    attributed = set()
    for owner in model.modules():
        if not hasattr(owner, 'light_module_host'):
            continue
        for kind, module in owner.light_modules.items():
            params = [p for p in module.parameters() if p.requires_grad]
            params += [p for p in module.host_parameters(owner.light_module_host()) if p.requires_grad]
            fresh = [p for p in params if id(p) not in attributed]
            attributed.update(id(p) for p in fresh)
            counts[kind] = counts.get(kind, 0) + sum(p.numel() for p in fresh)
    for name, child in model.named_children():
        rest = sum(p.numel() for p in child.parameters() if p.requires_grad and id(p) not in attributed)
        if rest:
            counts[name] = counts.get(name, 0) + rest
    counts['trainable'] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    counts['total'] = sum(p.numel() for p in model.parameters())
    return counts


def format_parameter_counts(counts: Dict[str, int]) -> str:
    """A small table: one line per kind, then trainable and total, with shares of the total."""
    total = counts['total']
    lines = [f'{"parameters":<20}{"count":>14}{"share":>10}']
    lines += [f'{name:<20}{count:>14,}{100 * count / total:>9.3f}%' for name, count in counts.items()]
    return '\n'.join(lines)
