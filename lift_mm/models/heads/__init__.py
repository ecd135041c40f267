from .class_weight_head import ClassWeightHead
from .cosine_cls_head import CosineClsHead
from .l2_normed_cls_head import L2NormedClsHead
from .layer_normed_cls_head import LayerNormedClsHead
from .lift_linear_cls_head import LIFTLinearClsHead
from .linear_probe import fit_balanced_logistic_regression
from .zero_shot_cls_head import ZeroShotClsHead
from .text_prompts import PROMPT_SETS, class_descriptions, load_descriptors, prompt_templates

__all__ = [
    'ClassWeightHead', 'CosineClsHead', 'L2NormedClsHead', 'LIFTLinearClsHead', 'LayerNormedClsHead', 'PROMPT_SETS',
    'class_descriptions', 'fit_balanced_logistic_regression', 'load_descriptors', 'prompt_templates', 'ZeroShotClsHead'
]
