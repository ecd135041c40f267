from .base_class_counts_loss import BaseClassCountsLoss, validate_class_counts
from .class_weighted_loss import (ClassBalancedLoss, ClassWeightedLoss, GeneralizedReweightLoss, class_balanced_weights,
                                  class_weighted_cross_entropy, generalized_reweight_weights)
from .lade_loss import LADELoss, lade_loss, lade_regulariser
from .ldam_loss import LDAMLoss, ldam_loss, ldam_margins
from .logit_adjusted_loss import BalancedSoftmaxLoss, LogitAdjustedLoss, balanced_softmax_loss, logit_adjusted_loss
from .softmax_focal_loss import SoftmaxFocalLoss, softmax_focal_loss

__all__ = [
    'validate_class_counts', 'BaseClassCountsLoss', 'ClassWeightedLoss', 'class_weighted_cross_entropy',
    'LogitAdjustedLoss', 'logit_adjusted_loss', 'BalancedSoftmaxLoss', 'balanced_softmax_loss', 'SoftmaxFocalLoss',
    'softmax_focal_loss', 'LDAMLoss', 'ldam_loss', 'ldam_margins', 'ClassBalancedLoss', 'class_balanced_weights',
    'GeneralizedReweightLoss', 'generalized_reweight_weights', 'LADELoss', 'lade_loss', 'lade_regulariser'
]
