from .clip_resnet import CLIPResNet
from .clip_vit import CLIPVisionTransformer
from .light_vision_transformer import LightVisionTransformer
from .timm_backbones import TimmResNet, TimmVisionTransformer

__all__ = ['CLIPResNet', 'CLIPVisionTransformer', 'LightVisionTransformer', 'TimmResNet', 'TimmVisionTransformer']
