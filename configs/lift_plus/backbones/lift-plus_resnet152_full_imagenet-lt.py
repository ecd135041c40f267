# LIFT+ on ImageNet-LT with timm's ImageNet-1k ResNet-152 (`resnet152`) and full fine-tuning of layer1..layer4.
_base_ = ['./lift-plus_resnet50_full_imagenet-lt.py']

model = dict(backbone=dict(model_name='resnet152'))
