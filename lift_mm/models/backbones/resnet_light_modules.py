from typing import Optional, Sequence, Tuple, Union

from mmpretrain.registry import MODELS

from ..peft import BatchNormTuning, BitFit, FullFineTuning, SSFOutput
from ..peft.base import OUTPUT_SITES, BlockContext, LightModuleContainer, check_light_module_keys, light_module_cfg


class ResNetLightModules(LightModuleContainer):
    """The light-weight options of ResNet backbones, which act on the whole encoder: its weights in place
    (``BitFit``, ``BatchNormTuning``, ``FullFineTuning``, each optionally ``within`` some of its stages) and its
    output feature (``SSFOutput``).

    Backbones list it before :class:`~lift_mm.models.utils.FrozenFoundationMixin`, whose
    :meth:`add_light_modules` this implements. Subclasses say which module holds the encoder
    (:meth:`light_module_host`), the width of its output (:meth:`output_dims`) and how their kind of ResNet is
    called in errors (``HOST_NAME``); their forward runs the encoder and returns
    ``self.at_site('output', feature, feature)``.
    """
    SITES = OUTPUT_SITES
    SUPPORTED_KINDS: Tuple[type, ...] = (BitFit, BatchNormTuning, SSFOutput, FullFineTuning)
    HOST_NAME = 'ResNets'

    def output_dims(self) -> int:
        """Width of the encoder's output feature."""
        raise NotImplementedError

    def add_light_modules(self, light_modules: Sequence[Union[dict, str]], num_classes: Optional[int]) -> None:
        """Build the configured options, which act on the whole encoder (its weights, its output feature)."""
        self.init_light_modules()
        # The encoder counts as one block: light modules of ResNets take only its output width.
        context = BlockContext(embed_dims=self.output_dims(), mlp_dims=0, num_heads=0, num_layers=1,
                               block_index=0, num_tokens=0, patch_size=(1, 1), num_classes=num_classes)
        for entry in light_modules:
            cfg, kind = light_module_cfg(entry)
            if kind not in self.SUPPORTED_KINDS:
                raise KeyError(f'Light module {kind.__name__!r} is not supported on {self.HOST_NAME}; use one of '
                               f'{[k.__name__ for k in self.SUPPORTED_KINDS]}.')
            check_light_module_keys(cfg, kind, ('type', ))
            self.add_light_module(kind.__name__, MODELS.build(cfg, default_args=dict(context=context)))
