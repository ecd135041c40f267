# Loss ablation (LIFT Table 16) on the offline demo: softmax focal loss, gamma 2 (`loss_type Focal`).
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(loss=dict(_delete_=True, type='SoftmaxFocalLoss', gamma=2.0)))
