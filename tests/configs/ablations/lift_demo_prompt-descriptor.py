# Prompt ablation (LIFT Table 13) on the offline demo: text initialisation from per-class descriptions, each class's
# description features averaged. The demo's descriptions are in lift_demo_descriptors.json beside this file.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

model = dict(head=dict(text_init=dict(prompt='descriptor',
                                      descriptors='tests/configs/ablations/lift_demo_descriptors.json')))
