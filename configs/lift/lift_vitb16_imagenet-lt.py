# LIFT on ImageNet-LT with CLIP ViT-B/16 (OpenAI weights): AdaptFormer, cosine head initialised from
# "a photo of a {class}.", logit-adjusted loss, SGD lr 0.01 for 10 epochs at batch 128.
# Data layout: see lift_mm.datasets.ImageNetLT (data/imagenet-lt). Without internet access, set
# `model.backbone.pretrained` to a local ViT-B-16 checkpoint file (and `model.backbone.quick_gelu` for a plain state
# dict), or copy huggingface_hub's cache and set HF_HUB_OFFLINE=1; see README, "Running LIFT on ImageNet-LT".
_base_ = [
    '../_base_/models/lift_vit-b16.py',
    '../_base_/datasets/imagenet-lt_bs128_clip-224.py',
    '../_base_/schedules/lift_sgd_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(classnames='data/imagenet-lt/classnames.txt'))
