# LIFT's recipe stretched to 20 epochs, as the paper uses for iNaturalist 2018.
_base_ = ['./lift_sgd_10e.py']

param_scheduler = dict(end=20, T_max=20)
train_cfg = dict(max_epochs=20, val_interval=20)
