# LIFT+ on ImageNet-LT with timm's ImageNet-1k ResNet-50 (`resnet50`, 2048-d pooled features) and bias tuning of
# layer1..layer4 (BitFit), as LIFT+ tunes its ResNets; MDA, 5 epochs at lr 0.02, cosine head from class means (no text
# tower), as for the ImageNet-21k ViTs.
_base_ = ['./lift-plus_vit-b16-in21k_imagenet-lt.py']

# LIFT+ tunes the residual stages only; the stem stays frozen.
stages = ['layer1', 'layer2', 'layer3', 'layer4']
model = dict(
    backbone=dict(
        _delete_=True,
        type='TimmResNet',
        model_name='resnet50',
        pretrained=True,
        light_modules=[dict(type='BitFit', within=stages)]),
    head=dict(in_channels=2048))
# ImageNet-1k normalisation (timm's ResNets, LIFT+'s in1k_rn* configs).
data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
