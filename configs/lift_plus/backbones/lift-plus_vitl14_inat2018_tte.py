# LIFT+ with CLIP ViT-L/14 on iNaturalist 2018, tested with five-crop test-time ensembling, as LIFT+ reports it.
_base_ = ['./lift-plus_vitl14_inat2018.py', '../../_base_/tte/lift-plus_tte_five-crop_224.py']

custom_hooks = _base_.custom_hooks + [dict(type='TestTimeEnsembleHook')]
