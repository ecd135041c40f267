# AdaptFormer in every block of CLIP's text transformer (bottleneck 4, LIFT+'s l.adaptformer default), classes as "a
# photo of a {class}.", the image encoder frozen. LIFT+'s default recipe on the offline demo (a tiny random CLIP, the
# generated 10-class long-tailed images; see ../_base_/models/clip-text-head_demo.py), trained for a few epochs:
#   python tools/train.py configs/baselines/text-adaptformer_demo.py
_base_ = ['../_base_/models/clip-text-head_demo.py']

model = dict(head=dict(text_light_modules=[dict(type='AdaptFormer', bottleneck=4)]))
