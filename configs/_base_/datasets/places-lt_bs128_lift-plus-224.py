# Places-LT with LIFT+'s data recipe for CLIP at 224 px; layout in lift_mm.datasets.PlacesLT.
_base_ = ['./long-tail_bs128_lift-plus-224.py']

data_root = 'data/places-lt'
data_preprocessor = dict(num_classes=365)
train_dataloader = dict(dataset=dict(type='PlacesLT', data_root=data_root))
val_dataloader = dict(dataset=dict(type='PlacesLT', data_root=data_root))
test_dataloader = dict(dataset=dict(type='PlacesLT', data_root=data_root))
