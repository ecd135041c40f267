"""A transformer block run by one fused forward that light modules can act inside."""
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
from open_clip.transformer import QuickGELU
from torch import nn
from torch.nn import functional as F

from .light_module import ACTIVATION_SITES, PARAMETER_SITES, BlockContext, LightModule

# The constant of QuickGELU, ``x * sigmoid(1.702 x)``, the MLP activation of OpenAI's CLIP.
QUICK_GELU_ALPHA = 1.702


class _QuickGELUFunction(torch.autograd.Function):
    """QuickGELU that keeps only its input for the backward pass.

    Autograd through ``x * sigmoid(1.702 x)`` keeps both ``x`` and the sigmoid, two tensors of the MLP's hidden
    width, the largest activations of a block. Its derivative is SiLU's at ``1.702 x``, which PyTorch computes in
    one fused kernel from ``x`` alone. Each direction allocates one tensor of the size of ``x`` and works in it in
    place: on the CPU, fresh allocations of this size are page faults on every step.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        # The same operations as open_clip's QuickGELU, so the values are bitwise identical.
        return (x * QUICK_GELU_ALPHA).sigmoid_().mul_(x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, = ctx.saved_tensors
        scaled = x * QUICK_GELU_ALPHA
        return torch.ops.aten.silu_backward.grad_input(grad, scaled, grad_input=scaled)


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(1.702 x)`` with half the activation memory of its autograd graph (see
    :class:`_QuickGELUFunction`)."""
    return _QuickGELUFunction.apply(x)


class BlockParts(NamedTuple):
    """The weights of a pre-norm transformer block, whatever library built it."""
    ln_1: nn.Module
    qkv_weight: torch.Tensor
    qkv_bias: Optional[torch.Tensor]
    out_proj: nn.Linear
    num_heads: int
    ls_1: nn.Module
    ln_2: nn.Module
    fc1: nn.Linear
    act: Callable[[torch.Tensor], torch.Tensor]
    fc2: nn.Linear
    ls_2: nn.Module


class TunableBlock(nn.Module):
    """Wraps a frozen pre-norm transformer block and runs it with light modules inside.

    The forward is written once for every host library: fused QKV projection, PyTorch's
    ``scaled_dot_product_attention`` and no layout permutes, which is faster than calling the host's
    ``nn.MultiheadAttention``. Subclasses only say where the host keeps its weights (:meth:`parts`).

    Light modules at the sites after the attention (``attn_out`` to ``mlp_branch``) must act on each token on
    its own: with ``class_token_only`` the block computes them for the class token alone.

    Args:
        block (nn.Module): The host block. Its weights stay where they are (``self.block``).
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.light_modules = nn.ModuleDict()
        self._hooks: Dict[str, List[Tuple[int, object]]] = {site: [] for site in ACTIVATION_SITES + PARAMETER_SITES}

    def parts(self) -> BlockParts:
        raise NotImplementedError

    def light_module_host(self) -> nn.Module:
        """The module whose weights light modules act on."""
        return self.block

    def context(self, num_layers: int, block_index: int, num_tokens: int, patch_size: Tuple[int, int],
                num_classes: Optional[int]) -> BlockContext:
        """Sizes of this block, for building light modules."""
        parts = self.parts()
        return BlockContext(embed_dims=parts.out_proj.out_features, mlp_dims=parts.fc1.out_features,
                            num_heads=parts.num_heads, num_layers=num_layers, block_index=block_index,
                            num_tokens=num_tokens, patch_size=patch_size, num_classes=num_classes)

    def add_light_module(self, name: str, module: LightModule) -> None:
        """Put ``module`` into this block under ``name`` and make the host weights it tunes trainable."""
        if name in self.light_modules:
            raise ValueError(f'A light module named {name!r} is already in this block: each kind may be listed '
                             'once per block in `light_modules`.')
        self.light_modules[name] = module
        module.attach(self.parts())
        for site, hook in module.hooks().items():
            self._hooks[site].append((module.order, hook))
            self._hooks[site].sort(key=lambda entry: entry[0])
        for param in module.host_parameters(self.block):
            param.requires_grad_(True)

    def _at(self, site: str, site_input: torch.Tensor, site_output: torch.Tensor) -> torch.Tensor:
        for _, hook in self._hooks[site]:
            site_output = hook(site_input, site_output)
        return site_output

    def _linear(self, site: str, x: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor]) -> torch.Tensor:
        for _, hook in self._hooks[site + '_params']:
            weight, bias = hook(weight, bias)
        return self._at(site, x, F.linear(x, weight, bias))

    def forward(self, x: torch.Tensor, class_token_only: bool = False) -> torch.Tensor:
        """Run the block on tokens of shape (batch, tokens, width).

        Args:
            x (torch.Tensor): Tokens, the class token first.
            class_token_only (bool): Return only the class token, shape (batch, 1, width). Every token still
                serves as key and value of the attention, but the output projection and the MLP run for the
                class token alone: in the last block of an encoder whose output is the class token, that skips
                most of the block's work. Defaults to False.
        """
        p = self.parts()
        x = self._at('tokens', x, x)
        batch, tokens, width = x.shape
        qkv = self._linear('qkv', self._at('ln_1', x, p.ln_1(x)), p.qkv_weight, p.qkv_bias)
        q, k, v = qkv.view(batch, tokens, 3, p.num_heads, width // p.num_heads).permute(2, 0, 3, 1, 4)
        if class_token_only:
            q, x = q[:, :, :1], x[:, :1]
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, q.shape[2], width)
        x = x + p.ls_1(self._linear('attn_out', attended, p.out_proj.weight, p.out_proj.bias))
        hidden = self._linear('mlp_in', self._at('ln_2', x, p.ln_2(x)), p.fc1.weight, p.fc1.bias)
        branch = self._linear('mlp_out', p.act(hidden), p.fc2.weight, p.fc2.bias)
        return x + self._at('mlp_branch', x, p.ls_2(branch))


class OpenCLIPTunableBlock(TunableBlock):
    """:class:`TunableBlock` for open_clip's ``ResidualAttentionBlock`` (fused ``in_proj_weight``).

    open_clip's ``QuickGELU`` (OpenAI's CLIP) runs as :func:`quick_gelu`, the same values with less memory.
    """

    def parts(self) -> BlockParts:
        block = self.block
        act = quick_gelu if type(block.mlp.gelu) is QuickGELU else block.mlp.gelu
        return BlockParts(
            ln_1=block.ln_1, qkv_weight=block.attn.in_proj_weight, qkv_bias=block.attn.in_proj_bias,
            out_proj=block.attn.out_proj, num_heads=block.attn.num_heads, ls_1=block.ls_1, ln_2=block.ln_2,
            fc1=block.mlp.c_fc, act=act, fc2=block.mlp.c_proj, ls_2=block.ls_2)
