# Runtime shared by every lift_mm config.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['lift_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)
# ClassCountsHook hands the training set's class counts to the logit-adjusted loss (and any component that asks
# for them); ParameterCountHook logs total / trainable parameters per light-module kind when training starts.
custom_hooks = [dict(type='ClassCountsHook'), dict(type='ParameterCountHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # The timeout makes surviving ranks fail instead of waiting forever when one rank dies.
    dist_cfg=dict(backend='nccl', timeout=1800),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
