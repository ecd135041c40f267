# iNaturalist 2018 (8142 classes, 437,513 training images) with LIFT's CLIP recipe; layout in
# lift_mm.datasets.INaturalist2018. The dataset has no test split: its val split (3 images per class) serves for
# both validation and testing, as in the literature.
_base_ = ['./long-tail_bs128_clip-224.py']

data_root = 'data/inat2018'
data_preprocessor = dict(num_classes=8142)
train_dataloader = dict(dataset=dict(type='INaturalist2018', data_root=data_root))
val_dataloader = dict(dataset=dict(type='INaturalist2018', data_root=data_root))
test_dataloader = dict(dataset=dict(type='INaturalist2018', data_root=data_root, split='val'))
