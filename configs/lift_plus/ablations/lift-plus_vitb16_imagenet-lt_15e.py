# Epoch ablation (LIFT+'s scripts/run_epochs.sh) on ImageNet-LT: LIFT+ trained for 15 epochs at lr 0.0066 (the script
# keeps epochs x lr about 0.1), tested with test-time ensembling, like the script.
_base_ = ['../lift-plus_vitb16_imagenet-lt_tte.py']

optim_wrapper = dict(optimizer=dict(lr=0.0066))
param_scheduler = dict(end=15, T_max=15)
train_cfg = dict(max_epochs=15, val_interval=15)
