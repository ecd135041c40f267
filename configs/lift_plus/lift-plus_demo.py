# Offline demo of LIFT+: lift_demo.py (a tiny random CLIP ViT on the generated 10-class long-tailed image set in
# data/lift-demo) with LIFT+'s changes: AdaptFormer's down-projection initialised as LIFT+ does, minimalist data
# augmentation (square crops on the convex schedule, bicubic, no flip), bicubic test resizing and LIFT+'s schedule (lr
# 0.02, 5 epochs). Trains and tests on 2 CPU cores in well under a minute.
_base_ = ['../lift/lift_demo.py']

model = dict(
    backbone=dict(light_modules=[dict(type='AdaptFormer', bottleneck='auto', down_init='kaiming_uniform')]))
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MinimalistRandomCrop', scale=32, schedule='convex'),
        dict(type='PackInputs'),
    ]))
# LIFT+'s test transform at the demo's 32 px: short edge to 32 + 32 // 7 = 36, bicubic, then the central 32 x 32.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=32 + 32 // 7, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
# LIFT+'s schedule (../_base_/schedules/lift-plus_sgd_5e.py) at the demo's batch of 32.
optim_wrapper = dict(optimizer=dict(lr=0.02))
param_scheduler = dict(end=5, T_max=5)
train_cfg = dict(max_epochs=5, val_interval=5)
custom_hooks = _base_.custom_hooks + [dict(type='AugmentationScheduleHook')]
