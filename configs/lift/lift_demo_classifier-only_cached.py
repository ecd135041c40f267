# Classifier-only LIFT on the offline demo, trained from cached features: the frozen encoder encodes the training
# images once (FeatureCacheHook) and every epoch trains the head on those features. Features can only be cached
# for a deterministic pipeline, so the training images go through the test pipeline: no random crop or flip.
# This gives, within float32 rounding, what lift_demo_tte.py without light modules gives with
# `train_dataloader.dataset.pipeline` set to the test pipeline. The cache lives in <work_dir>/feature_cache.
_base_ = ['./lift_demo_tte.py']

# FeatureClassifier takes the cached features in place of images (and images for validation and testing).
model = dict(type='FeatureClassifier', backbone=dict(light_modules=[]))
custom_hooks = _base_.custom_hooks + [dict(type='FeatureCacheHook')]
