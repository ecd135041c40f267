# LIFT's recipe: SGD (lr 0.01, momentum 0.9, weight decay 5e-4) for 10 epochs at a total batch of 128, with a
# cosine schedule stepped once per epoch and no warm-up.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))

param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=10, T_max=10)

train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=10)
val_cfg = dict()
test_cfg = dict()

# With `tools/train.py --auto-scale-lr`, lr scales linearly with the total batch relative to 128.
auto_scale_lr = dict(base_batch_size=128)
