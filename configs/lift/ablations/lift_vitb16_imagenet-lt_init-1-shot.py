# Initialisation ablation (LIFT Table 7) on ImageNet-LT: class means of 1 random training image(s) per class.
_base_ = ['./lift_vitb16_imagenet-lt_init-class-mean.py']

custom_hooks = _base_.custom_hooks[:-1] + [
    dict(type='HeadInitHook', method='class_mean', shots=1, pipeline=_base_.init_pipeline)]
