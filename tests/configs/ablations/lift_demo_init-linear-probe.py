# Initialisation ablation (LIFT Table 7) on the offline demo: class weights from a class-balanced logistic regression
# (L2, C = 1, 100 L-BFGS iterations, as LIFT's scikit-learn probe) on the frozen features, normalised.
_base_ = ['./lift_demo_init-class-mean.py']

custom_hooks = _base_.custom_hooks[:-1] + [
    dict(type='HeadInitHook', method='linear_probe', linear_probe=dict(C=1.0, max_iter=100))]
