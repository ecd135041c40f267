from .adapter import Adapter, AdaptFormer
from .base import inject_light_modules
from .host_tuning import BatchNormTuning, BitFit, FullFineTuning, LayerNormTuning
from .lora import LoRA, LoRAMLP
from .sparse_tuning import SparseTuning
from .ssf import SSFMLP, SSFAttn, SSFLayerNorm, SSFOutput
from .vpt import PromptTuningDeep, PromptTuningShallow, VPTDeep, VPTShallow

__all__ = [
    'AdaptFormer', 'Adapter', 'BatchNormTuning', 'BitFit', 'FullFineTuning', 'LayerNormTuning', 'LoRA', 'LoRAMLP',
    'PromptTuningDeep', 'PromptTuningShallow', 'SSFAttn', 'SSFLayerNorm', 'SSFMLP', 'SSFOutput', 'SparseTuning',
    'VPTDeep', 'VPTShallow', 'inject_light_modules'
]
