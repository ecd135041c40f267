# Ablation (LIFT Tables 7 and 13) on the offline demo: without semantic initialisation, the classifier starts from
# LIFT's random weights.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(text_init=None))
