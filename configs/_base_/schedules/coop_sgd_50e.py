# LIFT+'s CoOp recipe (its configs/method/coop.yaml over the defaults of utils/config.py): SGD (lr 0.002, momentum
# 0.9, weight decay 5e-4) for 50 epochs at a batch of 32 on one GPU, a cosine schedule stepped once per epoch, no
# warm-up, no minimalist data augmentation (the plain random-resized crop of the dataset bases). The batch of 32 is
# set by the configs, after the dataset base.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=5e-4))

param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=50, T_max=50)

train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=50)
val_cfg = dict()
test_cfg = dict()

# With `tools/train.py --auto-scale-lr`, lr scales linearly with the total batch relative to 32.
auto_scale_lr = dict(base_batch_size=32)
