# LIFT+ ablation ladder, step 1 of 5 on Places-LT: only a randomly initialised cosine classifier is trained on the
# frozen CLIP features (no light modules, no semantic initialisation, no MDA, no test-time ensembling), at the recipe's
# lr 0.02 for 5 epochs.
_base_ = ['./lift-plus_vitb16_places-lt_wo-mda-wo-semantic-init.py']

model = dict(backbone=dict(light_modules=[]))
