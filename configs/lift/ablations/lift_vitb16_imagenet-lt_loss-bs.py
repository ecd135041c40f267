# Loss ablation (LIFT Table 16) on ImageNet-LT: balanced softmax (`loss_type BS`). Losses that need class counts get
# them from ClassCountsHook.
_base_ = ['../lift_vitb16_imagenet-lt_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='BalancedSoftmaxLoss')))
