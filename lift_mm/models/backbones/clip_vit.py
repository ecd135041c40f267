from typing import Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from open_clip.transformer import QuickGELU
from torch.utils.checkpoint import checkpoint

from ..peft import inject_light_modules
from ..peft.base import BlockParts, TunableBlock
from ..utils import FrozenFoundationMixin, SharedCLIP

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


@MODELS.register_module()
class CLIPVisionTransformer(FrozenFoundationMixin, BaseBackbone):
    """CLIP's image encoder (an open_clip ViT), frozen, with light modules injected into its blocks.

    The output is LIFT's feature: the class token after ``ln_post``, before CLIP's visual projection (768-d for
    ViT-B/16). All CLIP weights are loaded and frozen here, in ``__init__``, so that test runs (which never call
    ``init_weights``) and DDP (which wraps the model after construction) see them; the text tower is dropped.

    Args:
        arch (str | dict): open_clip model name (``'ViT-B-16'``, ``'ViT-B-32'``, ``'ViT-L-14'``,
            ``'ViT-L-14-336'``, ...) or an open_clip model config dict. Defaults to ``'ViT-B-16'``.
        pretrained (str, optional): open_clip tag (``'openai'``; from huggingface_hub's cache with
            ``HF_HUB_OFFLINE=1``) or local checkpoint path; None for fixed-seed random weights. A head with
            ``text_init`` takes its text features from this CLIP too. Defaults to ``'openai'``.
        quick_gelu (bool, optional): Whether the weights use QuickGELU. None takes it from the weights (open_clip
            tag, OpenAI TorchScript archive, file written by :func:`~lift_mm.models.utils.save_clip_weights`) and
            refuses a plain state-dict file, which cannot tell: set True for OpenAI's weights, False for LAION /
            DataComp ones. Defaults to None.
        light_modules (Sequence[dict | str]): Configs of the light modules to inject, e.g.
            ``[dict(type='AdaptFormer', bottleneck='auto', blocks=None)]``, or names of kinds for their defaults
            (``['VPTDeep']``). Defaults to LIFT's AdaptFormer.
        num_classes (int, optional): Number of classes, for ``'auto'`` light-module sizes. Defaults to None.
        with_cp (bool): Recompute each block's activations in the backward pass instead of storing them
            (activation checkpointing), trading compute for memory. Defaults to False.
        compact_state_dict (bool): Leave the frozen CLIP weights out of the state dict (and so out of
            checkpoints); they are refilled from ``pretrained`` on load. Defaults to True.
        check_fingerprint (bool): Refuse checkpoints trained on other CLIP weights. Defaults to True.
        out_projected (bool): Output the feature after CLIP's visual projection, in the joint image-text space
            (zero-shot CLIP), instead of LIFT's pre-projection feature. Defaults to False.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'ViT-B-16',
                 pretrained: Optional[str] = 'openai',
                 quick_gelu: Optional[bool] = None,
                 light_modules: Sequence[dict] = (dict(type='AdaptFormer'), ),
                 num_classes: Optional[int] = None,
                 with_cp: bool = False,
                 compact_state_dict: bool = True,
                 check_fingerprint: bool = True,
                 out_projected: bool = False) -> None:
        super().__init__()
        # The whole CLIP stays loaded until a head has taken its text features from it (or the model is first
        # switched to train or eval mode, see ``train``), so that the weights are read once per run.
        self.shared_clip = SharedCLIP(arch, pretrained, quick_gelu, key_prefix='model.backbone.')
        visual = self.shared_clip.model.visual
        if not hasattr(visual, 'transformer') or getattr(visual, 'attn_pool', None) is not None:
            raise ValueError(f'`arch`={arch!r} is not a plain CLIP ViT (class-token pooling, no attention '
                             'pooling); CLIPVisionTransformer supports ViT architectures such as ViT-B-16.')
        self.visual = visual
        self.with_cp = with_cp
        self.out_projected = out_projected
        self.build_light_weight('visual', light_modules, num_classes, compact_state_dict, check_fingerprint)

    def add_light_modules(self, light_modules: Sequence[Union[dict, str]], num_classes: Optional[int]) -> None:
        """Wrap every residual block in an :class:`OpenCLIPTunableBlock` holding its light modules."""
        visual = self.visual
        inject_light_modules(visual.transformer.resblocks, light_modules, OpenCLIPTunableBlock,
                             num_tokens=visual.positional_embedding.shape[0],
                             patch_size=tuple(visual.conv1.kernel_size), num_classes=num_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Patch, class and position embeddings, then ``ln_pre``: tokens of shape (batch, tokens, width)."""
        visual = self.visual
        tokens = visual.conv1(images).flatten(2).transpose(1, 2)
        expected = visual.positional_embedding.shape[0]
        if tokens.shape[1] + 1 != expected:
            raise ValueError(f'Input images of size {tuple(images.shape[-2:])} give {tokens.shape[1] + 1} tokens, '
                             f'but this CLIP encoder was built for {tuple(visual.image_size)} ({expected} tokens): '
                             'resize or crop the inputs to that size in the data pipeline.')
        cls_token = visual.class_embedding.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        tokens = torch.cat([cls_token, tokens], dim=1) + visual.positional_embedding.to(tokens.dtype)
        return visual.ln_pre(tokens)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor]:
        tokens = self.embed(images)
        blocks = self.visual.transformer.resblocks
        for index, block in enumerate(blocks):
            # Only the class token leaves the encoder: the last block computes nothing else after its attention.
            last = index == len(blocks) - 1
            if self.with_cp and tokens.requires_grad:
                tokens = checkpoint(block, tokens, last, use_reentrant=False)
            else:
                tokens = block(tokens, class_token_only=last)
        feature = self.visual.ln_post(tokens[:, 0])
        return (feature @ self.visual.proj if self.out_projected else feature, )
