# Initialisation ablation (LIFT Table 7) on the offline demo: class weights = normalised mean CLIP feature (frozen
# encoder, no light modules) of each class's training images, instead of text features.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

# The demo's test pipeline is LIFT's plain transform at 32 px, so the hook's default is kept.
model = dict(head=dict(text_init=None))
custom_hooks = _base_.custom_hooks + [dict(type='HeadInitHook', method='class_mean')]
