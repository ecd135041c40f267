# LIFT on Places-LT (365 classes) with CLIP ViT-B/16: the ImageNet-LT recipe. Data layout: lift_mm.datasets.PlacesLT.
_base_ = [
    '../_base_/models/lift_vit-b16.py',
    '../_base_/datasets/places-lt_bs128_clip-224.py',
    '../_base_/schedules/lift_sgd_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(num_classes=365), head=dict(num_classes=365, classnames='data/places-lt/classnames.txt'))
