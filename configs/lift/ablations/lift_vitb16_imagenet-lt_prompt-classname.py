# Prompt ablation (LIFT Table 13) on ImageNet-LT: text initialisation from the bare class name ('{}').
_base_ = ['../lift_vitb16_imagenet-lt_tte.py']

model = dict(head=dict(text_init=dict(prompt='classname')))
