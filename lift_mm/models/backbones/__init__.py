from .clip_vit import CLIPVisionTransformer
from .light_vision_transformer import LightVisionTransformer

__all__ = ['CLIPVisionTransformer', 'LightVisionTransformer']
