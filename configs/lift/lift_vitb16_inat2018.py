# LIFT on iNaturalist 2018 (8,142 classes) with CLIP ViT-B/16, trained for 20 epochs as in the paper. The class names
# for the text initialisation come from categories.json. Data layout: lift_mm.datasets.INaturalist2018.
_base_ = [
    '../_base_/models/lift_vit-b16.py',
    '../_base_/datasets/inat2018_bs128_clip-224.py',
    '../_base_/schedules/lift_sgd_20e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(num_classes=8142), head=dict(num_classes=8142, classnames='data/inat2018/categories.json'))
