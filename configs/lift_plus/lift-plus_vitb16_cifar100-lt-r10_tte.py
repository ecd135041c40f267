# LIFT+ on CIFAR-100-LT, ratio 10, tested with five-crop test-time ensembling, as LIFT+ reports it. The images are
# held in memory, so the views are cut without LoadImageFromFile.
_base_ = ['./lift-plus_vitb16_cifar100-lt-r10.py', '../_base_/tte/lift-plus_tte_five-crop_224.py']

tta_pipeline = _base_.tta_pipeline[1:]
custom_hooks = _base_.custom_hooks + [dict(type='TestTimeEnsembleHook')]
