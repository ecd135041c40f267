# Ablation (LIFT Tables 7 and 13) on ImageNet-LT: without semantic initialisation, the classifier starts from LIFT's
# random weights.
_base_ = ['../lift_vitb16_imagenet-lt_tte.py']

model = dict(head=dict(text_init=None))
