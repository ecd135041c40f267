# CoOp (Zhou et al., IJCV 2022) on the offline demo (a tiny random CLIP, the generated 10-class long-tailed images;
# see ../_base_/models/clip-text-head_demo.py), trained for a few epochs:
#   python tools/train.py configs/baselines/coop_demo.py
_base_ = ['../_base_/models/clip-text-head_demo.py']

model = dict(head=dict(context=dict(n_ctx=4, position='end')))
