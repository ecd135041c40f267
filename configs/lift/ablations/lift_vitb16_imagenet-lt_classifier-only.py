# Ablation (LIFT Table 6) on ImageNet-LT: only the classifier is trained, no light modules.
_base_ = ['../lift_vitb16_imagenet-lt_tte.py']

model = dict(backbone=dict(light_modules=[]))
