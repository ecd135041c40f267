# Projection tuning on the offline demo (a tiny random CLIP, the generated 10-class long-tailed images; see
# ../_base_/models/clip-text-head_demo.py), trained for a few epochs:
#   python tools/train.py configs/baselines/proj-tuning_demo.py
_base_ = ['../_base_/models/clip-text-head_demo.py']

model = dict(head=dict(tune_image_projection=True, tune_text_projection=True))
