# LIFT on ImageNet-LT as the paper reports it: lift_vitb16_imagenet-lt.py, tested with test-time ensembling
# (five crops, logits averaged; see ../_base_/tte/lift_tte_five-crop_224.py). Training and validation are unchanged.
_base_ = ['./lift_vitb16_imagenet-lt.py', '../_base_/tte/lift_tte_five-crop_224.py']

custom_hooks = _base_.custom_hooks + [dict(type='TestTimeEnsembleHook')]
