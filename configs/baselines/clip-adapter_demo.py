# CLIP-Adapter on the offline demo (a tiny random CLIP, the generated 10-class long-tailed images; see
# configs/lift/lift_demo.py), trained for a few epochs:
#   python tools/train.py configs/baselines/clip-adapter_demo.py
_base_ = ['../lift/lift_demo.py']

model = dict(
    backbone=dict(light_modules=[]),
    head=dict(
        _delete_=True,
        type='TextEncoderClsHead',
        num_classes=10,
        in_channels=64,
        classnames={{_base_.classnames}},
        loss=dict(type='LogitAdjustedLoss', tau=1.0),
        clip_adapter=dict(bottleneck=4)))

train_cfg = dict(max_epochs=3, val_interval=3)
param_scheduler = dict(end=3, T_max=3)
