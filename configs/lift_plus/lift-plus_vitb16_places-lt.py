# LIFT+ on Places-LT (365 classes) with CLIP ViT-B/16: the ImageNet-LT recipe of LIFT+ (5 epochs, lr 0.02, MDA).
# Data layout: lift_mm.datasets.PlacesLT (data/places-lt).
_base_ = [
    '../_base_/models/lift-plus_vit-b16.py',
    '../_base_/datasets/places-lt_bs128_lift-plus-224.py',
    '../_base_/schedules/lift-plus_sgd_5e.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(num_classes=365), head=dict(num_classes=365, classnames='data/places-lt/classnames.txt'))
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
