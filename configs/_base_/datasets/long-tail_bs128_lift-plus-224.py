# LIFT+'s data recipe for CLIP at 224 px, shared by the *_bs128_lift-plus-224.py configs, which fill in the dataset
# type, data_root and num_classes. Every resize is bicubic (torchvision on PIL images in LIFT+; the pillow backend
# resizes alike). Training uses the minimalist data augmentation (MDA): a square random crop whose smallest area grows
# over training on LIFT+'s convex schedule, no flip. It needs dict(type='AugmentationScheduleHook') in custom_hooks,
# which tells the crops, also in persistent data-loader workers, how far training is; the configs add it.
_base_ = ['./long-tail_bs128_clip-224.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MinimalistRandomCrop', scale=224, schedule='convex'),
    dict(type='PackInputs'),
]
# LIFT+'s test transform: the short edge to r + r // 7 = 256 for r = 224, then the central 224 x 224.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224 + 224 // 7, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
