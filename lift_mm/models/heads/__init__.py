from .class_weight_head import ClassWeightHead
from .clip_text_encoder import CLIPTextEncoder
from .cosine_cls_head import CosineClsHead
from .l2_normed_cls_head import L2NormedClsHead
from .layer_normed_cls_head import LayerNormedClsHead
from .lift_linear_cls_head import LIFTLinearClsHead
from .linear_probe import fit_balanced_logistic_regression
from .text_encoder_cls_head import TextEncoderClsHead
from .text_init import (PROMPT_SETS, class_descriptions, encode_class_prompts, load_descriptors, prompt_templates,
                        to_image_feature_space)
from .zero_shot_cls_head import ZeroShotClsHead

__all__ = [
    'CLIPTextEncoder',
    'ClassWeightHead', 'CosineClsHead', 'L2NormedClsHead', 'LIFTLinearClsHead', 'LayerNormedClsHead', 'PROMPT_SETS',
    'class_descriptions', 'encode_class_prompts', 'fit_balanced_logistic_regression', 'load_descriptors',
    'prompt_templates', 'TextEncoderClsHead', 'to_image_feature_space', 'ZeroShotClsHead'
]
