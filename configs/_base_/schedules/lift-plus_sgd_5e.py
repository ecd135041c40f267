# LIFT+'s recipe: SGD (lr 0.02, momentum 0.9, weight decay 5e-4) for 5 epochs at a total batch of 128, with a cosine
# schedule stepped once per epoch and no warm-up: LIFT's optimiser at twice the learning rate for half the epochs.
_base_ = ['./lift_sgd_10e.py']

optim_wrapper = dict(optimizer=dict(lr=0.02))
param_scheduler = dict(end=5, T_max=5)
train_cfg = dict(max_epochs=5, val_interval=5)
