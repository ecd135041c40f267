# Places-LT (365 classes, 62,500 training images) with LIFT's CLIP recipe; layout in lift_mm.datasets.PlacesLT.
# Validation uses the val split (20 images per class), testing the test split (100 per class) that papers report.
_base_ = ['./long-tail_bs128_clip-224.py']

data_root = 'data/places-lt'
data_preprocessor = dict(num_classes=365)
train_dataloader = dict(dataset=dict(type='PlacesLT', data_root=data_root))
val_dataloader = dict(dataset=dict(type='PlacesLT', data_root=data_root))
test_dataloader = dict(dataset=dict(type='PlacesLT', data_root=data_root))
