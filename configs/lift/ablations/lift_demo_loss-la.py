# Loss ablation (LIFT Table 16) on the offline demo: the logit-adjusted loss, LIFT's default (`loss_type LA`),
# spelled out. Losses that need class counts get them from ClassCountsHook.
_base_ = ['../lift_demo_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='LogitAdjustedLoss', tau=1.0)))
