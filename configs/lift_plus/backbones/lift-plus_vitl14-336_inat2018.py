# LIFT+ on iNaturalist 2018 (15 epochs) with CLIP ViT-L/14 at 336 px: 8 accumulated loader batches of 16 per step of
# the total batch of 128, as LIFT+ does; every crop and resize at 336 px (test: short edge 336 + 336 // 7 = 384).
_base_ = ['./lift-plus_vitl14_inat2018.py']

model = dict(backbone=dict(arch='ViT-L-14-336'))
train_dataloader = dict(
    batch_size=16,
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MinimalistRandomCrop', scale=336, schedule='convex'),
        dict(type='PackInputs'),
    ]))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=336 + 336 // 7, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=336),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
optim_wrapper = dict(accumulative_counts=8)
auto_scale_lr = dict(base_batch_size=16)
