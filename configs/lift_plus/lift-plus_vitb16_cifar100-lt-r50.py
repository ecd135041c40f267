# LIFT+ on CIFAR-100-LT, imbalance ratio 50; many / medium / few by this ratio's own training counts, as LIFT+ does.
_base_ = ['./lift-plus_vitb16_cifar100-lt-r100.py']

train_dataloader = dict(dataset=dict(imbalance_ratio=50))
val_dataloader = dict(dataset=dict(imbalance_ratio=50))
test_dataloader = dict(dataset=dict(imbalance_ratio=50))
