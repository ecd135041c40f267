# LIFT+ on ImageNet-LT with timm's ImageNet-21k ViT-L/16 (`vit_large_patch16_224`, 1024-d features).
_base_ = ['./lift-plus_vit-b16-in21k_imagenet-lt.py']

model = dict(backbone=dict(model_name='vit_large_patch16_224'), head=dict(in_channels=1024))
