"""An ImageClassifier whose head takes its CLIP text features from the backbone's CLIP."""
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS

__all__ = ['CLIPImageClassifier']


@MODELS.register_module()
class CLIPImageClassifier(ImageClassifier):
    """:class:`ImageClassifier` that lends the backbone's CLIP to the head.

    MMEngine builds the backbone first and the head after it, and neither sees the other. Once both exist, this
    classifier hands the head (if it initialises class weights from CLIP text, e.g. ``CosineClsHead`` with
    ``text_init``, or ``TextEncoderClsHead``, which builds its text tower from it) the CLIP its CLIP backbone
    (``CLIPVisionTransformer``, ``CLIPResNet``) loaded, as the backbone's ``shared_clip``. So the text features
    always come from the backbone's CLIP (``model.backbone.arch``, ``pretrained``, ``quick_gelu``: one place to set
    them), and the weights are read once per run. With another
    backbone, the head is told that there is no CLIP to follow and asks for its own keys.

    Args:
        **kwargs: Arguments of :class:`ImageClassifier` (``backbone``, ``neck``, ``head``, ``train_cfg``, ...).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if hasattr(self.head, 'use_backbone_clip'):
            self.head.use_backbone_clip(getattr(self.backbone, 'shared_clip', None))
