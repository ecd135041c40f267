# Classifier ablation (LIFT Table 15) on the offline demo: a linear classifier with L2-normalised weights (LIFT's
# L2NormedClassifier), with the same initialisation and loss.
_base_ = ['../../../configs/lift/lift_demo_tte.py']

# The cosine head's `scale` is the only key the other heads do not take.
model = dict(head=dict({key: value for key, value in _base_.model.head.items() if key != 'scale'},
                       _delete_=True, type='L2NormedClsHead'))
