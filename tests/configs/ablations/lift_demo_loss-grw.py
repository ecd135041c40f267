# Loss ablation (LIFT Table 16) on the offline demo: generalized re-weighting (`loss_type GRW`). Losses that need
# class counts get them from ClassCountsHook.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='GeneralizedReweightLoss', exp_scale=1.0)))
