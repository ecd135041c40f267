from .adaptformer import AdaptFormer
from .injection import block_indices, inject_light_modules, registered_light_modules
from .light_module import BlockContext, LightModule, auto_bottleneck, resolve_bottleneck
from .tunable_block import BlockParts, OpenCLIPTunableBlock, TunableBlock

__all__ = [
    'AdaptFormer', 'BlockContext', 'BlockParts', 'LightModule', 'OpenCLIPTunableBlock', 'TunableBlock',
    'auto_bottleneck', 'block_indices', 'inject_light_modules', 'registered_light_modules', 'resolve_bottleneck'
]
