# Zero-shot CLIP with the single prompt "a photo of a {}." on the offline demo (a tiny random CLIP: expect
# chance-level accuracy):
#   python tools/test.py configs/zero_shot/zsclip_demo_single-prompt.py
_base_ = ['./zsclip_demo.py']

model = dict(head=dict(text_init=dict(prompt='default')))
