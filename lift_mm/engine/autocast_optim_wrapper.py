"""Mixed-precision training on whatever device the model is on, the CPU included."""
import copy
from contextlib import contextmanager
from typing import Iterator, Optional, Union

import torch
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.runner.amp import autocast
from mmpretrain.registry import OPTIM_WRAPPERS
from torch import nn

__all__ = ['AutocastOptimWrapper', 'mixed_precision_optim_wrapper']


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(AmpOptimWrapper):
    """MMEngine's :class:`AmpOptimWrapper` without its CUDA-only assertion: autocast on CPU or GPU.

    MMEngine's ``AmpOptimWrapper`` refuses to be built without an accelerator, although its autocast context
    (``mmengine.runner.amp.autocast``) supports the CPU, where only bfloat16 is available. This wrapper keeps all
    of ``AmpOptimWrapper`` (autocast context, loss scaling, state dict) and scales the loss only for float16:
    bfloat16 has float32's exponent range, so its gradients do not underflow. On a GPU with
    ``dtype='float16'`` it behaves exactly like ``AmpOptimWrapper``. Use it with
    ``--cfg-options optim_wrapper.type=AutocastOptimWrapper optim_wrapper.dtype=bfloat16``.

    Args:
        dtype (str | torch.dtype): Autocast type, ``'bfloat16'`` or ``'float16'`` (GPU only).
            Defaults to ``'bfloat16'``.
        loss_scale (float | str | dict): Loss scaling with float16, as for ``AmpOptimWrapper``: ``'dynamic'``,
            a fixed scale or ``GradScaler`` arguments. Ignored for bfloat16. Defaults to ``'dynamic'``.
        device (str, optional): Device type to autocast on; None takes MMEngine's current device (``'cuda'``
            when a GPU is available, else ``'cpu'``). Defaults to None.
        **kwargs: Arguments of :class:`OptimWrapper` (``optimizer``, ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 loss_scale: Union[float, str, dict] = 'dynamic',
                 device: Optional[str] = None,
                 **kwargs) -> None:
        # AmpOptimWrapper.__init__ asserts that CUDA (or another accelerator) exists; only its parent's
        # initialisation is wanted here.
        OptimWrapper.__init__(self, **kwargs)
        if isinstance(dtype, str):
            if dtype not in ('bfloat16', 'float16'):
                raise ValueError(f"AutocastOptimWrapper: `dtype`={dtype!r} must be 'bfloat16' or 'float16'.")
            dtype = getattr(torch, dtype)
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f'AutocastOptimWrapper: `dtype`={dtype!r} must be torch.bfloat16 or torch.float16.')
        self.device = device or get_device()
        if self.device == 'cpu' and dtype == torch.float16:
            raise ValueError("AutocastOptimWrapper: float16 autocast needs a GPU; use dtype='bfloat16' on the CPU.")
        self.cast_dtype = dtype
        self._scale_update_param = None
        scaling = dtype == torch.float16
        if not scaling:
            self.loss_scaler = torch.amp.GradScaler(self.device, enabled=False)
        elif loss_scale == 'dynamic':
            self.loss_scaler = torch.amp.GradScaler(self.device)
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = torch.amp.GradScaler(self.device, init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler(self.device, **loss_scale)
        else:
            raise TypeError(f"AutocastOptimWrapper: `loss_scale` must be 'dynamic', a float or a dict of GradScaler "
                            f'arguments, got {loss_scale!r}.')

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient-accumulation context of :class:`OptimWrapper`, autocasting on ``self.device``."""
        with OptimWrapper.optim_context(self, model), autocast(device_type=self.device, dtype=self.cast_dtype):
            yield


def mixed_precision_optim_wrapper(optim_wrapper: dict, device: str, dtype: Optional[str] = None) -> dict:
    """An ``optim_wrapper`` config switched to mixed precision on ``device``, for the tools' ``--amp`` options.

    On CUDA it becomes MMEngine's ``AmpOptimWrapper`` (float16 with dynamic loss scaling unless the config or
    ``dtype`` says otherwise); elsewhere :class:`AutocastOptimWrapper` in bfloat16, the only type the CPU autocasts
    to, since MMEngine's wrapper refuses to be built without an accelerator.

    Args:
        optim_wrapper (dict): The config's ``optim_wrapper``; it is not changed.
        device (str): ``'cuda'`` or ``'cpu'``.
        dtype (str, optional): ``'float16'`` or ``'bfloat16'``; None keeps the config's, else the device's
            default. Defaults to None.

    Returns:
        dict: The switched config.
    """
    wrapper = copy.deepcopy(dict(optim_wrapper))
    if device == 'cuda':
        wrapper.update(type='AmpOptimWrapper')
        wrapper.setdefault('loss_scale', 'dynamic')
        if dtype is not None:
            wrapper['dtype'] = dtype
    elif dtype in (None, 'bfloat16'):
        wrapper.update(type='AutocastOptimWrapper', dtype='bfloat16')
    else:
        raise ValueError(f'Mixed precision on {device!r} autocasts to bfloat16 only, not {dtype}.')
    return wrapper
