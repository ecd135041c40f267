# Loss ablation (LIFT Table 16) on the offline demo: class-balanced re-weighting, beta 0.9999 (`loss_type CB`).
# Losses that need class counts get them from ClassCountsHook.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='ClassBalancedLoss', beta=0.9999)))
