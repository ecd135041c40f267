# iNaturalist 2018 with LIFT+'s data recipe for CLIP at 224 px; layout in lift_mm.datasets.INaturalist2018. Its val
# split serves for both validation and testing.
_base_ = ['./long-tail_bs128_lift-plus-224.py']

data_root = 'data/inat2018'
data_preprocessor = dict(num_classes=8142)
train_dataloader = dict(dataset=dict(type='INaturalist2018', data_root=data_root))
val_dataloader = dict(dataset=dict(type='INaturalist2018', data_root=data_root))
test_dataloader = dict(dataset=dict(type='INaturalist2018', data_root=data_root, split='val'))
