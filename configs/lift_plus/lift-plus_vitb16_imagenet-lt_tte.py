# LIFT+ on ImageNet-LT as LIFT+ reports it: lift-plus_vitb16_imagenet-lt.py tested with five-crop test-time
# ensembling (see ../_base_/tte/lift-plus_tte_five-crop_224.py). Training and validation are unchanged.
_base_ = ['./lift-plus_vitb16_imagenet-lt.py', '../_base_/tte/lift-plus_tte_five-crop_224.py']

custom_hooks = _base_.custom_hooks + [dict(type='TestTimeEnsembleHook')]
