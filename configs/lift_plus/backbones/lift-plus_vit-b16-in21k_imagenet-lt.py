# LIFT+ on ImageNet-LT with timm's ViT-B/16 (`vit_base_patch16_224`, the ImageNet-21k pre-trained weights LIFT+ takes
# from timm) instead of CLIP: AdaptFormer as LIFT+ initialises it, MDA, 5 epochs at lr 0.02. There is no text tower:
# as LIFT+ does, the cosine head starts from the class means of the frozen encoder's features of at most 100 training
# images per class (shorter side resized to 224, bicubic, centre crop), computed by HeadInitHook before training.
# `pretrained=True` downloads the weights through timm; give a local file path instead on machines without internet.
_base_ = ['../lift-plus_vitb16_imagenet-lt.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='TimmVisionTransformer',
        model_name='vit_base_patch16_224',
        pretrained=True,
        light_modules=[dict(type='AdaptFormer', bottleneck='auto', down_init='kaiming_uniform')],
        num_classes=1000),
    head=dict(text_init=None, classnames=None))
# timm's ImageNet-21k ViTs normalise with mean = std = 0.5.
data_preprocessor = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5])
init_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
custom_hooks = _base_.custom_hooks + [
    dict(type='HeadInitHook', method='class_mean', shots=100, pipeline=init_pipeline)]
