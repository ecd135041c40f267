# lift_mm's light modules on mmpretrain's own ViT-B/16: the mmpretrain ViT config becomes light-weight fine-tuning
# by changing its type to LightVisionTransformer and adding `light_modules`. The pretrained weights
# (ImageNet-21k ViT-B/16 in mmpretrain's format) load in the backbone's __init__; put the file at the path below
# or change it. There is no text tower, so the cosine head starts from random weights.
_base_ = ['../lift_vitb16_imagenet-lt.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='LightVisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        out_type='cls_token',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vit-base-p16_in21k.pth', prefix='backbone.'),
        light_modules=[dict(type='AdaptFormer', bottleneck='auto')],
        num_classes=1000),
    head=dict(text_init=None, classnames=None))
# ImageNet-21k ViTs normalise with mean = std = 0.5.
data_preprocessor = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5])
