# Figure 4a sweep: LIFT's ImageNet-LT recipe with full fine-tuning of the encoder at learning rate 0.0001.
_base_ = ['../lift_vitb16_imagenet-lt.py']

model = dict(backbone=dict(light_modules=[dict(type='FullFineTuning')]))
optim_wrapper = dict(optimizer=dict(lr=0.0001))
