# Figure 4a sweep: LIFT's ImageNet-LT recipe with SparseTuning training a fraction 0.0001 of each linear's entries.
_base_ = ['../lift_vitb16_imagenet-lt.py']

model = dict(backbone=dict(light_modules=[dict(type='SparseTuning', ratio=0.0001)]))
