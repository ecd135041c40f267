# LIFT on CIFAR-100-LT, imbalance ratio 50 (the many / medium / few groups stay those of ratio 100, as in LIFT).
_base_ = ['./lift_vitb16_cifar100-lt-r100.py']

train_dataloader = dict(dataset=dict(imbalance_ratio=50))
val_dataloader = dict(dataset=dict(imbalance_ratio=50))
test_dataloader = dict(dataset=dict(imbalance_ratio=50))
