# Loss ablation (LIFT Table 16) on the offline demo: cross-entropy instead of the logit-adjusted loss (LIFT's
# `loss_type CE`).
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='CrossEntropyLoss')))
