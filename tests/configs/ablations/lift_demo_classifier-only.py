# Ablation (LIFT Table 6) on the offline demo: only the classifier is trained, no light modules.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(backbone=dict(light_modules=[]))
