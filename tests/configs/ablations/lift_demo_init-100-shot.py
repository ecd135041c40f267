# Initialisation ablation (LIFT Table 7) on the offline demo: class means of 100 random training image(s) per class.
_base_ = ['./lift_demo_init-class-mean.py']

custom_hooks = _base_.custom_hooks[:-1] + [
    dict(type='HeadInitHook', method='class_mean', shots=100)]
