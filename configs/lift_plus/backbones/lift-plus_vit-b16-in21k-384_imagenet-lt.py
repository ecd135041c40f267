# LIFT+ on ImageNet-LT with timm's ImageNet-21k ViT-B/16 at 384 px (`vit_base_patch16_384`): every crop and resize at
# 384 px (test: short edge 384 + 384 // 7 = 438; head initialisation: short edge 384, centre crop).
_base_ = ['./lift-plus_vit-b16-in21k_imagenet-lt.py']

model = dict(backbone=dict(model_name='vit_base_patch16_384'))
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MinimalistRandomCrop', scale=384, schedule='convex'),
        dict(type='PackInputs'),
    ]))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=384 + 384 // 7, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=384),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
init_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=384, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=384),
    dict(type='PackInputs'),
]
custom_hooks = _base_.custom_hooks[:-1] + [
    dict(type='HeadInitHook', method='class_mean', shots=100, pipeline=init_pipeline)]
