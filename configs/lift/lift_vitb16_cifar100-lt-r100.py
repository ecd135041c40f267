# LIFT on CIFAR-100-LT, imbalance ratio 100, with CLIP ViT-B/16 (the 32 px images upsampled to 224 px). CIFAR-100 has
# no class-name file: the head takes the names from the dataset. Data layout: lift_mm.datasets.CIFAR100LT.
_base_ = [
    '../_base_/models/lift_vit-b16.py',
    '../_base_/datasets/cifar100-lt_bs128_clip-224.py',
    '../_base_/schedules/lift_sgd_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(num_classes=100),
    head=dict(num_classes=100, classnames=dict(type='CIFAR100LT', data_root='data/cifar100', split='test')))
