# Loss ablation (LIFT Table 16) on the offline demo: LADE (`loss_type LADE`). Losses that need class counts get them
# from ClassCountsHook.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='LADELoss', remine_lambda=0.1, estim_loss_weight=0.1)))
