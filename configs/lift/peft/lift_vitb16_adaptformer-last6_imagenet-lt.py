# AdaptFormer in the last 6 of the 12 blocks only (LIFT, Figure 10: partial fine-tuning).
_base_ = ['../lift_vitb16_imagenet-lt.py']

model = dict(backbone=dict(light_modules=[dict(type='AdaptFormer', blocks=6)]))
