# LIFT+ on iNaturalist 2018 (8,142 classes) with CLIP ViT-B/16, trained for 15 epochs at lr 0.02 as LIFT+ does. The
# class names for the text initialisation come from categories.json. Data layout: lift_mm.datasets.INaturalist2018.
_base_ = [
    '../_base_/models/lift-plus_vit-b16.py',
    '../_base_/datasets/inat2018_bs128_lift-plus-224.py',
    '../_base_/schedules/lift-plus_sgd_15e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(num_classes=8142), head=dict(num_classes=8142, classnames='data/inat2018/categories.json'))
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
