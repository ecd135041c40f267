from .feature_classifier import FeatureClassifier, FeatureDataPreprocessor, is_feature_batch

__all__ = ['FeatureClassifier', 'FeatureDataPreprocessor', 'is_feature_batch']
