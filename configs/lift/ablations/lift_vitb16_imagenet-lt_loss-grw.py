# Loss ablation (LIFT Table 16) on ImageNet-LT: generalized re-weighting (`loss_type GRW`). Losses that need class
# counts get them from ClassCountsHook.
_base_ = ['../lift_vitb16_imagenet-lt_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='GeneralizedReweightLoss', exp_scale=1.0)))
