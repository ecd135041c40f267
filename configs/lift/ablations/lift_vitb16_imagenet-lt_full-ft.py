# Ablation (LIFT Table 6) on ImageNet-LT: full fine-tuning of the CLIP encoder instead of AdaptFormer.
_base_ = ['../lift_vitb16_imagenet-lt_tte.py']

model = dict(backbone=dict(light_modules=[dict(type='FullFineTuning')]))
