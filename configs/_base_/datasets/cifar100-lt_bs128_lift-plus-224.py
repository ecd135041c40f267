# CIFAR-100-LT at imbalance ratio 100 with LIFT+'s data recipe (the 32 px images upsampled to 224 px, bicubic). Unlike
# LIFT, LIFT+ groups the classes into many / medium / few by the counts of the ratio trained on (group_ratio=None), so
# at ratio 10 no class is few-shot and LongTailAccuracy reports no `few` value. Layout in lift_mm.datasets.CIFAR100LT.
_base_ = ['./long-tail_bs128_lift-plus-224.py']

data_root = 'data/cifar100'
# The images come from the archive as RGB arrays, not through LoadImageFromFile.
data_preprocessor = dict(num_classes=100, to_rgb=False)
train_pipeline = [
    dict(type='MinimalistRandomCrop', scale=224, schedule='convex'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='ResizeEdge', scale=224 + 224 // 7, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(
        type='CIFAR100LT', data_root=data_root, imbalance_ratio=100, group_ratio=None, pipeline=train_pipeline))
# CIFAR-100 has no val split: validation and testing both use the balanced test split.
val_dataloader = dict(
    dataset=dict(
        type='CIFAR100LT',
        data_root=data_root,
        split='test',
        imbalance_ratio=100,
        group_ratio=None,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
