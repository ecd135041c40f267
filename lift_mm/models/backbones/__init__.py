from .clip_resnet import CLIPResNet
from .clip_vit import CLIPVisionTransformer
from .light_vision_transformer import LightVisionTransformer

__all__ = ['CLIPResNet', 'CLIPVisionTransformer', 'LightVisionTransformer']
