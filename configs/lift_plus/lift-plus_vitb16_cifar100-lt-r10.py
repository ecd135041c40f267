# LIFT+ on CIFAR-100-LT, imbalance ratio 10; many / medium / few by this ratio's own training counts, as LIFT+ does (no
# class has fewer than 20 images at ratio 10, so no few-shot accuracy is reported).
_base_ = ['./lift-plus_vitb16_cifar100-lt-r100.py']

train_dataloader = dict(dataset=dict(imbalance_ratio=10))
val_dataloader = dict(dataset=dict(imbalance_ratio=10))
test_dataloader = dict(dataset=dict(imbalance_ratio=10))
