# LIFT+'s recipe stretched to 15 epochs, as LIFT+ trains on iNaturalist 2018 (same learning rate, 0.02).
_base_ = ['./lift-plus_sgd_5e.py']

param_scheduler = dict(end=15, T_max=15)
train_cfg = dict(max_epochs=15, val_interval=15)
