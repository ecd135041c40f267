# LIFT+ on ImageNet-LT with timm's ImageNet-1k ResNet-101 (`resnet101`) and SSF on the pooled output feature.
_base_ = ['./lift-plus_resnet50_ssf_imagenet-lt.py']

model = dict(backbone=dict(model_name='resnet101'))
