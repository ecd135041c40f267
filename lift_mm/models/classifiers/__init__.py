from .clip_image_classifier import CLIPImageClassifier
from .feature_classifier import FeatureClassifier, FeatureDataPreprocessor, is_feature_batch

__all__ = ['CLIPImageClassifier', 'FeatureClassifier', 'FeatureDataPreprocessor', 'is_feature_batch']
