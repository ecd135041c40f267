# LIFT+ on ImageNet-LT with timm's ImageNet-21k ViT-L/16 at 384 px (`vit_large_patch16_384`, 1024-d features).
_base_ = ['./lift-plus_vit-b16-in21k-384_imagenet-lt.py']

model = dict(backbone=dict(model_name='vit_large_patch16_384'), head=dict(in_channels=1024))
