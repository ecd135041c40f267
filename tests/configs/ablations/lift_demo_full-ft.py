# Ablation (LIFT Table 6) on the offline demo: full fine-tuning of the CLIP encoder instead of AdaptFormer.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(backbone=dict(light_modules=[dict(type='FullFineTuning')]))
