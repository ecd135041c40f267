# Loss ablation (LIFT Table 16) on the offline demo: balanced softmax (`loss_type BS`). Losses that need class counts
# get them from ClassCountsHook.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='BalancedSoftmaxLoss')))
