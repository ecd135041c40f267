# Ablation (LIFT Table 5) on ImageNet-LT: tested without test-time ensembling (the plain test pipeline).
_base_ = ['../lift_vitb16_imagenet-lt.py']
