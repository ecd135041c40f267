# The offline demo (../../lift/lift_demo.py: its tiny random CLIP on the generated 10-class long-tailed images)
# classifying through the CLIP's text tower, as ./clip-text-head_vit-b16.py does for ViT-B/16: the image encoder frozen
# without light modules, TextEncoderClsHead on the demo's class names with the logit-adjusted loss, trained for 3
# epochs. With no method option the head trains nothing: each demo in configs/baselines/ adds its method's option.
_base_ = ['../../lift/lift_demo.py']

model = dict(
    backbone=dict(light_modules=[]),
    head=dict(
        _delete_=True,
        type='TextEncoderClsHead',
        num_classes=10,
        in_channels=64,
        classnames={{_base_.classnames}},
        loss=dict(type='LogitAdjustedLoss', tau=1.0)))

train_cfg = dict(max_epochs=3, val_interval=3)
param_scheduler = dict(end=3, T_max=3)
