from .balanced_softmax_loss import BalancedSoftmaxLoss, balanced_softmax_loss
from .base_class_counts_loss import BaseClassCountsLoss
from .class_balanced_loss import ClassBalancedLoss, class_balanced_weights
from .class_counts_mixin import ClassCountsMixin, validate_class_counts
from .class_weighted_loss import ClassWeightedLoss, class_weighted_cross_entropy
from .generalized_reweight_loss import GeneralizedReweightLoss, generalized_reweight_weights
from .lade_loss import LADELoss, lade_loss, lade_regulariser
from .ldam_loss import LDAMLoss, ldam_loss, ldam_margins
from .logit_adjusted_loss import LogitAdjustedLoss, logit_adjusted_loss
from .softmax_focal_loss import SoftmaxFocalLoss, softmax_focal_loss

__all__ = [
    'ClassCountsMixin', 'validate_class_counts', 'BaseClassCountsLoss', 'ClassWeightedLoss',
    'class_weighted_cross_entropy', 'LogitAdjustedLoss', 'logit_adjusted_loss', 'BalancedSoftmaxLoss',
    'balanced_softmax_loss', 'SoftmaxFocalLoss', 'softmax_focal_loss', 'LDAMLoss', 'ldam_loss', 'ldam_margins',
    'ClassBalancedLoss', 'class_balanced_weights', 'GeneralizedReweightLoss', 'generalized_reweight_weights',
    'LADELoss', 'lade_loss', 'lade_regulariser'
]
