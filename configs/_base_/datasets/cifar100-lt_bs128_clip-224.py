# CIFAR-100-LT at imbalance ratio 100 (10,847 training images) with LIFT's CLIP recipe: the 32 px images are
# upsampled to 224 px as in LIFT. Other ratios: set imbalance_ratio=50 or 10 in the dataset of train, val and test
# dataloaders alike (class_counts follow the ratio; the many / medium / few groups stay those of ratio 100, as in
# LIFT); imbalance_ratio=1 is the balanced CIFAR-100. Layout in lift_mm.datasets.CIFAR100LT; nothing is downloaded.
_base_ = ['./long-tail_bs128_clip-224.py']

data_root = 'data/cifar100'
# The images come from the archive as RGB arrays, not through LoadImageFromFile.
data_preprocessor = dict(num_classes=100, to_rgb=False)
train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(type='CIFAR100LT', data_root=data_root, imbalance_ratio=100, pipeline=train_pipeline))
# CIFAR-100 has no val split: validation and testing both use the balanced test split.
val_dataloader = dict(
    dataset=dict(type='CIFAR100LT', data_root=data_root, split='test', imbalance_ratio=100, pipeline=test_pipeline))
test_dataloader = val_dataloader
