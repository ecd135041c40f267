"""A classifier that trains its head from cached encoder features as well as from images."""
from typing import List, Sequence, Tuple, Union

import torch
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.registry import MODELS
from torch import nn

from .clip_image_classifier import CLIPImageClassifier

__all__ = ['FeatureClassifier', 'FeatureDataPreprocessor', 'is_feature_batch']


def is_feature_batch(inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> bool:
    """Whether a batch's ``inputs`` are feature vectors: a (N, C) tensor or a sequence of (C, ) tensors.

    Images are (N, 3, H, W) tensors or sequences of (3, H, W) tensors, so the number of dimensions tells them
    apart.
    """
    if isinstance(inputs, torch.Tensor):
        return inputs.dim() == 2
    return len(inputs) > 0 and all(isinstance(item, torch.Tensor) and item.dim() == 1 for item in inputs)


@MODELS.register_module()
class FeatureDataPreprocessor(ClsDataPreprocessor):
    """:class:`ClsDataPreprocessor` that passes batches of features through unchanged.

    Image batches are converted, normalised and stacked as by ``ClsDataPreprocessor``. Batches of features
    (see :func:`is_feature_batch`) were normalised before the encoder computed them: they are only stacked and
    moved to the model's device with their data samples. Batch augmentations (Mixup, CutMix) act on images, so
    they cannot apply to features: a feature batch in training with ``batch_augments`` set is an error.

    Args:
        **kwargs: Arguments of :class:`ClsDataPreprocessor`.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        if not is_feature_batch(data['inputs']):
            return super().forward(data, training)
        if training and self.batch_augments is not None:
            raise RuntimeError('FeatureDataPreprocessor: batch augmentations (train_cfg.augments) act on images and '
                               'cannot be applied to cached features; remove them to train from cached features.')
        inputs = data['inputs']
        features = inputs if isinstance(inputs, torch.Tensor) else torch.stack(list(inputs))
        return dict(inputs=self.cast_data(features), data_samples=self.cast_data(data.get('data_samples')))


@MODELS.register_module()
class FeatureClassifier(CLIPImageClassifier):
    """:class:`CLIPImageClassifier` whose inputs may be encoder features instead of images.

    Given images (N, 3, H, W) it is a ``CLIPImageClassifier``. Given features (N, C), the output of
    ``extract_feat`` (backbone and neck) for images, it skips the encoder and runs the head on them. This is
    what training from cached features needs (see :class:`~lift_mm.engine.FeatureCacheHook`), for models that
    train only the head: training iterations read features, validation and testing still read images.

    Its data preprocessor must be a :class:`FeatureDataPreprocessor`, the default when the config gives no
    ``type``. Heads must read only the last feature of the tuple they receive, as every ``ClsHead`` does.

    Args:
        data_preprocessor (dict | nn.Module, optional): The data preprocessor; a dict without ``type`` builds a
            :class:`FeatureDataPreprocessor`. Defaults to None.
        **kwargs: Arguments of :class:`CLIPImageClassifier` (``backbone``, ``neck``, ``head``, ``train_cfg``,
            ...).
    """

    def __init__(self, data_preprocessor: Union[dict, nn.Module, None] = None, **kwargs) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor or {})
            data_preprocessor.setdefault('type', 'FeatureDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, **kwargs)
        if not isinstance(self.data_preprocessor, FeatureDataPreprocessor):
            raise TypeError(f'FeatureClassifier needs a FeatureDataPreprocessor, which passes cached features '
                            f'through; got {type(self.data_preprocessor).__name__}. Leave `type` out of the '
                            'data_preprocessor config.')

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'neck') -> Tuple[torch.Tensor, ...]:
        """The encoder's features of images, or ``(inputs, )`` when ``inputs`` are features already."""
        if not is_feature_batch(inputs):
            return super().extract_feat(inputs, stage)
        if stage != 'neck':
            raise ValueError(f"FeatureClassifier: cached features are the neck's output; stage={stage!r} cannot "
                             'be computed from them.')
        return (inputs, )

    def trainable_encoder_parameters(self) -> List[str]:
        """Names of the trainable parameters of the backbone and neck, which cached features would freeze."""
        encoder = (('backbone', self.backbone), ('neck', self.neck))
        return [f'{prefix}.{name}' for prefix, module in encoder if module is not None
                for name, param in module.named_parameters() if param.requires_grad]
