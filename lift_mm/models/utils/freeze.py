from typing import Union

from mmengine.logging import MMLogger
from torch import nn

from ...utils import drop_messages

# What MMEngine's DefaultOptimWrapperConstructor logs for every parameter without gradient when a config sets
# `paramwise_cfg` (as mmpretrain's transformer schedules do): about 150 lines for a frozen ViT-B/16.
FROZEN_PARAMETER_SKIPPED = r' is skipped since its requires_grad=False$'


def freeze(weights: Union[nn.Module, nn.Parameter]) -> None:
    """Freeze ``weights`` (a module's parameters or one parameter), which lift_mm leaves out of training by design.

    The optimiser constructor's per-parameter notice that frozen weights are skipped then says nothing a user
    needs, so the current MMEngine logger drops it from now on: a runner creates its logger before it builds the
    model, and builds the optimiser with the same logger. Other messages of the constructor still pass.

    Args:
        weights (nn.Module | nn.Parameter): What to freeze.
    """
    weights.requires_grad_(False)
    drop_messages(MMLogger.get_current_instance(), FROZEN_PARAMETER_SKIPPED)
