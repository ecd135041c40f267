# ImageNet-LT (1000 classes, 115,846 training images) with LIFT's CLIP recipe; layout in lift_mm.datasets.ImageNetLT.
# Validation uses the val split (20 images per class), testing the test split (50 per class) that papers report.
_base_ = ['./long-tail_bs128_clip-224.py']

data_root = 'data/imagenet-lt'
data_preprocessor = dict(num_classes=1000)
train_dataloader = dict(dataset=dict(type='ImageNetLT', data_root=data_root))
val_dataloader = dict(dataset=dict(type='ImageNetLT', data_root=data_root))
test_dataloader = dict(dataset=dict(type='ImageNetLT', data_root=data_root))
