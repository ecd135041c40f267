# LIFT+ ablation ladder, step 2 of 5 on Places-LT: AdaptFormer with a randomly initialised classifier (LIFT+'s
# `classifier_init None`), no MDA, no test-time ensembling.
_base_ = ['./lift-plus_vitb16_places-lt_wo-mda.py']

model = dict(head=dict(text_init=None))
