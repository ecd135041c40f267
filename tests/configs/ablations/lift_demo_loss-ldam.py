# Loss ablation (LIFT Table 16) on the offline demo: LDAM (`loss_type LDAM`): the head's logits already carry its
# scale 25, so only the margins are scaled. Losses that need class counts get them from ClassCountsHook.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='LDAMLoss', max_margin=0.5, scale=25., logits_scaled=True)))
