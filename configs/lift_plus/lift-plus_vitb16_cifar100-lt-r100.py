# LIFT+ on CIFAR-100-LT, imbalance ratio 100, with CLIP ViT-B/16 (the 32 px images upsampled to 224 px, bicubic);
# classes grouped by this ratio's counts, as LIFT+ does. The head takes the class names from the dataset. Data
# layout: lift_mm.datasets.CIFAR100LT.
_base_ = [
    '../_base_/models/lift-plus_vit-b16.py',
    '../_base_/datasets/cifar100-lt_bs128_lift-plus-224.py',
    '../_base_/schedules/lift-plus_sgd_5e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(num_classes=100),
    head=dict(num_classes=100, classnames=dict(type='CIFAR100LT', data_root='data/cifar100', split='test')))
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
