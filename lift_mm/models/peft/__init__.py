from .adapter import Adapter
from .adaptformer import AdaptFormer
from .bottleneck import Bottleneck
from .host_tuning import BatchNormTuning, BitFit, FullFineTuning, LayerNormTuning
from .injection import (block_indices, check_light_module_keys, inject_light_modules, light_module_cfg,
                        registered_light_modules)
from .light_module import (ACTIVATION_SITES, PARAMETER_SITES, BlockContext, LightModule, auto_bottleneck,
                           resolve_bottleneck)
from .lora import LoRA
from .lora_mlp import LoRAMLP
from .mmpretrain_block import MMPretrainTunableBlock
from .low_rank import LowRank
from .reference_checkpoint import convert_lift_reference, save_converted
from .sparse_tuning import MaskedUpdate, SparseTuning, auto_mask_ratio
from .ssf import ScaleShift, SSFAttn, SSFLayerNorm, SSFMLP, SSFOutput
from .tunable_block import BlockParts, OpenCLIPTunableBlock, TunableBlock
from .vpt import VPTDeep, VPTShallow

__all__ = [
    'ACTIVATION_SITES', 'PARAMETER_SITES', 'AdaptFormer', 'Adapter', 'BatchNormTuning', 'BitFit', 'BlockContext', 'BlockParts',
    'Bottleneck', 'FullFineTuning', 'LayerNormTuning', 'LightModule', 'LoRA', 'LoRAMLP', 'LowRank', 'MMPretrainTunableBlock', 'MaskedUpdate',
    'OpenCLIPTunableBlock', 'SSFAttn', 'SSFLayerNorm', 'SSFMLP', 'SSFOutput', 'ScaleShift', 'SparseTuning', 'TunableBlock',
    'VPTDeep', 'VPTShallow', 'auto_bottleneck', 'auto_mask_ratio', 'block_indices', 'check_light_module_keys',
    'convert_lift_reference', 'inject_light_modules', 'light_module_cfg', 'registered_light_modules',
    'resolve_bottleneck', 'save_converted'
]
