# The offline demo: SyntheticLongTail generates 10 classes of 32 px shapes (150 down to 5 training images per
# class, so the many, medium and few groups are all present) into data_root on first use. It keeps the CLIP
# normalisation and evaluator of the long-tail recipe, with smaller batches and the images at their 32 px size:
# cropping or resizing them up would only cost time.
_base_ = ['./long-tail_bs128_clip-224.py']

data_root = 'data/lift-demo'
data_preprocessor = dict(num_classes=10)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # Crops of at least half the image keep enough of the small shapes to recognise them.
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0), backend='pillow', interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 32), backend='pillow', interpolation='bilinear'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    dataset=dict(type='SyntheticLongTail', data_root=data_root, pipeline=train_pipeline))
# The demo has no val split: validation and testing both use the balanced test split (20 images per class).
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    dataset=dict(type='SyntheticLongTail', data_root=data_root, split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
