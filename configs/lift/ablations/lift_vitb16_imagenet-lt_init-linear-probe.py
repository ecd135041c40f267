# Initialisation ablation (LIFT Table 7) on ImageNet-LT: class weights from a class-balanced logistic regression (L2,
# C = 1, 100 L-BFGS iterations, as LIFT's scikit-learn probe) on the frozen features, normalised.
_base_ = ['./lift_vitb16_imagenet-lt_init-class-mean.py']

custom_hooks = _base_.custom_hooks[:-1] + [
    dict(type='HeadInitHook', method='linear_probe', linear_probe=dict(C=1.0, max_iter=100),
         pipeline=_base_.init_pipeline)]
