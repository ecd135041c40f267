# Figure 4a sweep: LIFT's ImageNet-LT recipe with SparseTuning training a fraction 1.0 of each linear's entries.
_base_ = ['../lift_vitb16_imagenet-lt.py']

model = dict(backbone=dict(light_modules=[dict(type='SparseTuning', ratio=1.0)]))
