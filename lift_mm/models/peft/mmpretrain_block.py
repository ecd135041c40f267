from torch import nn

from .tunable_block import BlockParts, TunableBlock


class MMPretrainTunableBlock(TunableBlock):
    """:class:`TunableBlock` for mmpretrain's ``TransformerEncoderLayer`` (ViT, DeiT, ...).

    The host's dropouts and drop-path are not applied: its weights are frozen and run as in eval mode.
    """

    def __init__(self, block: nn.Module) -> None:
        if getattr(block.attn, 'v_shortcut', False) or not hasattr(block.ffn, 'layers'):
            raise ValueError('Light modules support mmpretrain transformer layers with a plain attention (no '
                             'v_shortcut) and a two-linear FFN (not SwiGLU).')
        super().__init__(block)

    def parts(self) -> BlockParts:
        block = self.block
        return BlockParts(
            ln_1=block.ln1, qkv_weight=block.attn.qkv.weight, qkv_bias=block.attn.qkv.bias,
            out_proj=block.attn.proj, num_heads=block.attn.num_heads, ls_1=block.attn.gamma1, ln_2=block.ln2,
            fc1=block.ffn.layers[0][0], act=block.ffn.layers[0][1], fc2=block.ffn.layers[1], ls_2=block.ffn.gamma2)
