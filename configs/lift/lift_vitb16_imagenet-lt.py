# LIFT on ImageNet-LT with CLIP ViT-B/16 (OpenAI weights): AdaptFormer, cosine head initialised from
# "a photo of a {class}.", logit-adjusted loss, SGD lr 0.01 for 10 epochs at batch 128.
# Data layout: see lift_mm.datasets.ImageNetLT (data/imagenet-lt). Without internet access, point both
# `model.backbone.pretrained` and `model.head.text_init.pretrained` at a local ViT-B-16 checkpoint file.
_base_ = [
    '../_base_/models/lift_vit-b16.py',
    '../_base_/datasets/imagenet-lt_bs128_clip-224.py',
    '../_base_/schedules/lift_sgd_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(classnames='data/imagenet-lt/classnames.txt'))
