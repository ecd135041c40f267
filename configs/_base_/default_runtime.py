# Runtime shared by every lift_mm config.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['lift_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Writes each checkpoint atomically, so that a run killed while saving keeps its earlier checkpoints.
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # Refuses to resume on changed training annotation files; on_change='warn' resumes anyway.
    annotation_fingerprint=dict(type='AnnotationFingerprintHook', on_change='error'),
    # Refuses checkpoints that do not fit the model when testing or resuming (load_from warns), and resuming
    # with changed batch size, learning rate, schedule or light modules; on_config_change='warn' resumes anyway.
    checkpoint_compatibility=dict(type='CheckpointCompatibilityHook', on_config_change='error'),
    # Locks the work dir while training: a second run there fails at once, naming the first.
    work_dir_lock=dict(type='WorkDirLockHook'),
)
# ClassNumCheckHook compares the head's num_classes with the dataset's classes before training, validation and
# testing; it runs first so that a mismatch is reported as such, not by the hooks that use the class counts.
# ClassCountsHook hands the training set's class counts to the logit-adjusted loss (and any component that asks
# for them); ParameterCountHook logs total / trainable parameters per light-module kind when training starts.
# SkippedImagesHook totals the unreadable images that a dataset with on_unreadable='skip' replaced, per epoch.
custom_hooks = [
    dict(type='ClassNumCheckHook', priority='VERY_HIGH'),
    dict(type='ClassCountsHook'),
    dict(type='ParameterCountHook'),
    dict(type='SkippedImagesHook'),
]

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
