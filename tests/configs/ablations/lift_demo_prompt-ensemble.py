# Prompt ablation (LIFT Table 13) on the offline demo: text initialisation from CLIP's 80 ImageNet templates,
# features averaged.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(text_init=dict(prompt='ensemble')))
