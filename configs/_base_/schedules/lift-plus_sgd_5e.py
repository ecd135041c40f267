# The defaults of LIFT+'s code (utils/config.py), which its text-side baselines without a method file of their own
# (CLIP-Adapter, projection tuning, light modules in the text transformer) run with: SGD (lr 0.02, momentum 0.9,
# weight decay 5e-4) for 5 epochs at a batch of 128 on one GPU, a cosine schedule stepped once per epoch, no warm-up.
# LIFT+'s defaults also switch on its minimalist data augmentation; these configs keep the plain random-resized
# crop of the dataset bases.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=5e-4))

param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=5, T_max=5)

train_cfg = dict(by_epoch=True, max_epochs=5, val_interval=5)
val_cfg = dict()
test_cfg = dict()

# With `tools/train.py --auto-scale-lr`, lr scales linearly with the total batch relative to 128.
auto_scale_lr = dict(base_batch_size=128)
