# LIFT's ImageNet-LT recipe with FullFineTuning instead of AdaptFormer (LIFT, Table 6 / Figure 4).
_base_ = ['../lift_vitb16_imagenet-lt.py']

model = dict(backbone=dict(light_modules=[dict(type='FullFineTuning')]))
