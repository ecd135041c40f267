# ImageNet-LT with LIFT+'s data recipe for CLIP at 224 px; layout in lift_mm.datasets.ImageNetLT.
_base_ = ['./long-tail_bs128_lift-plus-224.py']

data_root = 'data/imagenet-lt'
data_preprocessor = dict(num_classes=1000)
train_dataloader = dict(dataset=dict(type='ImageNetLT', data_root=data_root))
val_dataloader = dict(dataset=dict(type='ImageNetLT', data_root=data_root))
test_dataloader = dict(dataset=dict(type='ImageNetLT', data_root=data_root))
