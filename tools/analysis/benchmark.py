"""Measure the speed and peak memory of a config's model on synthetic data.

``python tools/analysis/benchmark.py CONFIG [--batch-size N] [--iters N] [--warmup N] [--device cpu|cuda] [--tte]
[--amp {none,fp16,bf16}] [--cfg-options ...]`` prints one JSON line per figure:

* ``setup``: what was measured, on what (device, threads, load average).
* ``parameters``: trainable and total parameters of the model.
* ``train_step``: the runner's training step (data preprocessor, forward, loss, backward and the optimiser step of
  the config's ``optim_wrapper``) on random images and labels.
* ``train_step_cached_features``: for a :class:`~lift_mm.models.classifiers.FeatureClassifier`, the same step on
  random features, what training from cached features costs (timed interleaved with ``train_step``).
* ``inference``: the runner's test step (predictions) without gradients.
* ``inference_tte`` (with ``--tte``): the test step through the config's ``tta_model`` on its ``tta_pipeline``'s
  number of views (LIFT's five crops by default).

``--variant "KEY=VALUE ..."`` (repeatable) measures several variants of the config in one process, e.g.
``--variant model.backbone.with_cp=False --variant model.backbone.with_cp=True``: their iterations alternate (in
the order A B, then B A, ...), so that a change of the machine's load affects all of them alike, and every figure
line names its ``variant``.

Every timed figure gives the median wall-clock seconds per iteration over ``--iters`` iterations after ``--warmup``
untimed ones, images per second from it, and the median process CPU seconds per iteration, which is less disturbed
than wall-clock time by other processes on a shared machine. Memory is measured on one extra iteration:
``peak_step_memory_mib`` is the peak of tensor memory allocated during the iteration above what was allocated when
it started (activations, gradients and temporaries, not the weights): on CUDA from
``torch.cuda.max_memory_allocated``, on the CPU from the allocation events of PyTorch's memory profiler.
``peak_memory_mib`` is the absolute peak: CUDA's ``max_memory_allocated``, or on Linux CPUs the process's peak
resident set size during the iteration (``VmHWM``, reset through ``/proc/self/clear_refs``), which also counts
Python, libraries, allocator caches and, with ``--variant``, the models of all variants. A last ``done`` line gives
the load average at the end.

The model is built from the config without ``init_weights`` (the weights do not change the cost) and modules that
need class counts get uniform ones. Images are random ``uint8`` tensors of the model's input size: the CLIP
backbone's, else the test pipeline's crop or resize; ``--input-size`` overrides it.
"""
import argparse
import copy
import json
import logging
import os
import os.path as osp
import re
import shlex
import statistics
import sys
import time
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple

# Run from a checkout without installing: the repository root holds the lift_mm package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner.amp import autocast  # noqa: E402
from mmpretrain.registry import MODELS, TRANSFORMS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

import lift_mm  # noqa: E402,F401  (registers components)
from lift_mm.engine import mixed_precision_optim_wrapper, tta_settings  # noqa: E402
from lift_mm.models.classifiers import FeatureClassifier  # noqa: E402

AMP_DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}
# LIFT's test-time ensemble: four corner crops and the centre crop.
DEFAULT_TTE_VIEWS = 5
MIB = 2**20
# Above the highest level of the profiler's (kineto's) own log: 0 verbose, 1 info, 2 warning, 3 stage, 4 error, 5 usdt.
KINETO_SILENT = '6'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Measure training and inference speed and peak memory of a '
                                     "config's model on synthetic data; prints one JSON line per figure.")
    parser.add_argument('config', help='config file path')
    parser.add_argument('--batch-size', type=int, default=32, help='images per iteration')
    parser.add_argument('--iters', type=int, default=5, help='timed iterations per figure')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations before the timed ones')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--tte', action='store_true', help='also measure inference with test-time ensembling')
    parser.add_argument('--amp', choices=['none', 'fp16', 'bf16'], default='none',
                        help='autocast type (fp16 needs CUDA)')
    parser.add_argument('--only', choices=['train', 'inference'],
                        help='measure only training or only inference figures')
    parser.add_argument('--input-size', type=int, help="square input size; default: the model's")
    parser.add_argument('--threads', type=int, help='CPU threads of PyTorch; default: its own choice')
    parser.add_argument('--seed', type=int, default=0, help='seed of the synthetic data')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. model.backbone.with_cp=True')
    parser.add_argument('--variant', action='append', metavar='"KEY=VALUE ..."',
                        help='a variant of the config (more --cfg-options) to measure interleaved with the others; '
                        'repeat for each variant')
    args = parser.parse_args(argv)
    for name in ('batch_size', 'iters'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1.')
    if args.warmup < 0:
        parser.error('--warmup must not be negative.')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available.')
    if args.device == 'cpu' and args.amp == 'fp16':
        parser.error('--amp fp16 needs CUDA; the CPU autocasts to bf16 only.')
    return args


def synchronize(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def time_interleaved(steps: Dict[Hashable, Callable[[], object]], warmup: int, iters: int,
                     device: str) -> Dict[Hashable, dict]:
    """Median wall-clock and process CPU seconds of every step over ``iters`` runs after ``warmup`` runs.

    The steps take turns, in reversed order every other round, so that slow phases of a shared machine hit them
    alike.
    """
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    synchronize(device)
    wall: Dict[Hashable, List[float]] = {name: [] for name in names}
    cpu: Dict[Hashable, List[float]] = {name: [] for name in names}
    for round_index in range(iters):
        for name in (names if round_index % 2 == 0 else names[::-1]):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            steps[name]()
            synchronize(device)
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: dict(s_per_iter=statistics.median(wall[name]),
                       s_per_iter_all=[float(f'{value:.5g}') for value in wall[name]],
                       cpu_s_per_iter=statistics.median(cpu[name])) for name in names}


def _walk(events) -> list:
    found = []
    for event in events:
        found.append(event)
        found.extend(_walk(event.children))
    return found


def cpu_peak_step_memory(step: Callable[[], object]) -> int:
    """Peak bytes of tensor memory allocated by ``step`` on the CPU, above the level when it started.

    PyTorch's profiler records every allocation and free of its CPU allocator while ``profile_memory`` is on;
    the running sum of their sizes, in time order, peaks at the answer. Frees of tensors allocated before the
    step are not recorded, so the figure can only err upwards.
    """
    # The profiler's raw event tree is the one place that lists allocations in time order.
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    # Used only to count allocations, the profiler would log its own start and stop and, where PyTorch is built for
    # CUDA but there is no GPU, that it found no GPU. Kineto reads the level when the profiler is first used; a
    # level set by the user stays.
    os.environ.setdefault('KINETO_LOG_LEVEL', KINETO_SILENT)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [event for event in _walk(prof.profiler.kineto_results.experimental_event_tree())
              if event.tag == _EventType.Allocation and event.extra_fields.device.type == 'cpu']
    events.sort(key=lambda event: event.start_time_ns)
    level = peak = 0
    for event in events:
        level += event.extra_fields.alloc_size
        peak = max(peak, level)
    return peak


def _status_kib(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as status:
            match = re.search(rf'^{field}:\s+(\d+) kB', status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def peak_rss(step: Callable[[], object]) -> Optional[int]:
    """Peak resident set size of the process while ``step`` runs, in bytes; None where Linux cannot tell."""
    try:
        # Writing 5 resets the peak (VmHWM) to the current resident set size (Linux >= 4.0).
        with open('/proc/self/clear_refs', 'w') as clear_refs:
            clear_refs.write('5')
    except OSError:
        step()
        return None
    step()
    peak = _status_kib('VmHWM')
    return None if peak is None else peak * 1024


def measure_memory(step: Callable[[], object], device: str) -> dict:
    """``peak_step_memory_mib`` and ``peak_memory_mib`` of one run of ``step`` (see the module docstring)."""
    if device == 'cuda':
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        step()
        synchronize(device)
        peak = torch.cuda.max_memory_allocated()
        return dict(peak_step_memory_mib=(peak - start) / MIB, peak_memory_mib=peak / MIB,
                    memory_method='torch.cuda.max_memory_allocated')
    step_peak = cpu_peak_step_memory(step)
    rss = peak_rss(step)
    return dict(peak_step_memory_mib=step_peak / MIB, peak_memory_mib=None if rss is None else rss / MIB,
                memory_method='profiler allocation events; peak RSS (VmHWM)')


def model_input_size(cfg: Config, model: torch.nn.Module, override: Optional[int]) -> Tuple[int, int]:
    """The input size the model takes: ``override``, the CLIP backbone's, else the test pipeline's."""
    if override is not None:
        return override, override
    visual = getattr(getattr(model, 'backbone', None), 'visual', None)
    if visual is not None and getattr(visual, 'image_size', None) is not None:
        return tuple(visual.image_size)
    for transform in reversed(list(cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline)):
        size = transform.get('crop_size') or transform.get('scale')
        if isinstance(size, int):
            return size, size
        if isinstance(size, (list, tuple)) and len(size) == 2:
            return tuple(size)
    raise ValueError('Cannot tell the input size of the model from the config; give --input-size.')


def synthetic_batch(batch_size: int, size: Tuple[int, int], num_classes: int, generator: torch.Generator,
                    views: int = 0) -> dict:
    """Random uint8 images and labels in the collated format of mmpretrain's data loaders.

    With ``views`` the inputs are a list over views of lists of images, the format of a multi-view test pipeline.
    """
    def images() -> torch.Tensor:
        return torch.randint(0, 256, (batch_size, 3, *size), dtype=torch.uint8, generator=generator)

    labels = torch.randint(0, num_classes, (batch_size, ), generator=generator)
    samples = [DataSample().set_gt_label(label) for label in labels]
    if views:
        return dict(inputs=[list(images()) for _ in range(views)], data_samples=[samples] * views)
    return dict(inputs=images(), data_samples=samples)


def give_uniform_class_counts(model: torch.nn.Module, num_classes: int) -> None:
    """Modules that need the training set's class counts get one sample per class: the cost does not change."""
    for module in model.modules():
        if callable(getattr(module, 'set_class_counts', None)):
            module.set_class_counts(torch.ones(num_classes, dtype=torch.long))


def optim_wrapper_cfg(cfg: Config, amp: str, device: str) -> dict:
    """The config's ``optim_wrapper``, switched to autocasting on ``device`` when ``amp`` asks for it."""
    if amp == 'none':
        return dict(cfg.optim_wrapper)
    return mixed_precision_optim_wrapper(cfg.optim_wrapper, device, str(AMP_DTYPES[amp]).replace('torch.', ''))


def tte_model_and_views(cfg: Config, model: torch.nn.Module) -> Tuple[torch.nn.Module, int, str]:
    """The config's test-time ensembling model around ``model`` and its number of views.

    Configs without ``tta_pipeline`` get lift_mm's default ``tta_model`` (logits averaged) on LIFT's five views.
    """
    if cfg.get('tta_pipeline'):
        tta_model, pipeline = tta_settings(cfg)
        views = [getattr(TRANSFORMS.build(transform), 'num_views', None) for transform in pipeline]
        views = [count for count in views if count]
        num_views = views[-1] if views else 1
        source = 'tta_pipeline'
    else:
        tta_model, num_views, source = dict(type='AverageLogitsTTA'), DEFAULT_TTE_VIEWS, 'default five views'
    return MODELS.build(dict(tta_model, module=model)), num_views, source


def log_to_stderr() -> None:
    """Keep stdout for the JSON lines: MMEngine logs, which go to stdout, go to stderr, warnings and errors only."""
    logger = MMLogger.get_instance('benchmark', log_level='WARNING')
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def emit(figure: str, **values) -> None:
    # Five significant digits: milliseconds of a small model and minutes of a large one keep the same precision.
    rounded = {key: float(f'{value:.5g}') if isinstance(value, float) else value for key, value in values.items()}
    print(json.dumps(dict(figure=figure, **rounded)), flush=True)


def variant_options(args: argparse.Namespace) -> Dict[str, dict]:
    """Config options of every variant by name; one unnamed variant without ``--variant``."""
    if not args.variant:
        return {'': {}}
    variants = {}
    for text in args.variant:
        parsed = argparse.Namespace()
        DictAction(option_strings=[], dest='options')(None, parsed, shlex.split(text))
        variants[text] = parsed.options
    return variants


class Subject:
    """One variant's model, optimiser and synthetic batches.

    Args:
        cfg (Config): The variant's config.
        args (argparse.Namespace): Command-line arguments.
    """

    def __init__(self, cfg: Config, args: argparse.Namespace) -> None:
        self.cfg = cfg
        self.device = args.device
        model_cfg = copy.deepcopy(cfg.model)
        if cfg.get('data_preprocessor') is not None:
            model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
        self.model = MODELS.build(model_cfg).to(self.device)
        self.num_classes = self.model.head.num_classes
        give_uniform_class_counts(self.model, self.num_classes)
        self.size = model_input_size(cfg, self.model, args.input_size)
        self.generator = torch.Generator().manual_seed(args.seed)
        self.amp_dtype = AMP_DTYPES.get(args.amp)
        self.batch_size = args.batch_size
        self.optim_wrapper = None
        if args.only != 'inference':
            self.optim_wrapper = build_optim_wrapper(self.model, optim_wrapper_cfg(cfg, args.amp, self.device))

    def batch(self, views: int = 0) -> dict:
        return synthetic_batch(self.batch_size, self.size, self.num_classes, self.generator, views)

    def train_step(self) -> Callable[[], object]:
        """The runner's training step on a fixed random batch."""
        batch = self.batch()
        self.model.train()
        return lambda: self.model.train_step(batch, self.optim_wrapper)

    def cached_features_step(self) -> Tuple[Callable[[], object], int]:
        """The training step of a FeatureClassifier on random features, and their width."""
        batch = self.batch()
        with torch.no_grad():
            width = self.model.extract_feat(self.model.data_preprocessor(batch, False)['inputs'])[-1].shape[1]
        features = dict(inputs=torch.randn(self.batch_size, width, generator=self.generator),
                        data_samples=batch['data_samples'])
        self.model.train()
        return lambda: self.model.train_step(features, self.optim_wrapper), width

    def test_step(self, tte: bool = False) -> Tuple[Callable[[], object], dict]:
        """The runner's test step, as MMEngine's test loop runs it (no gradients, autocast when asked for), on
        a fixed random batch, and what describes it."""
        model, views, extra = self.model.eval(), 0, {}
        if tte:
            model, views, source = tte_model_and_views(self.cfg, self.model)
            model.eval()
            extra = dict(views=views, tte_model=type(model).__name__, views_from=source)
        batch = self.batch(views)

        def step() -> List[DataSample]:
            with torch.no_grad(), autocast(device_type=self.device, dtype=self.amp_dtype,
                                           enabled=self.amp_dtype is not None):
                return model.test_step(batch)

        return step, extra


def measure(steps: Dict[Tuple[str, str], Tuple[Callable[[], object], dict]], args: argparse.Namespace) -> None:
    """Time the steps, keyed by figure and variant, interleaved, then measure their memory one after another."""
    timings = time_interleaved({key: step for key, (step, _) in steps.items()}, args.warmup, args.iters,
                               args.device)
    for (figure, name), (step, extra) in steps.items():
        variant = dict(variant=name) if name else {}
        timing = timings[(figure, name)]
        emit(figure, **variant, batch_size=args.batch_size, images_per_s=args.batch_size / timing['s_per_iter'],
             **timing, **measure_memory(step, args.device), **extra)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    log_to_stderr()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = Config.fromfile(args.config)
    if args.cfg_options:
        base.merge_from_dict(args.cfg_options)
    init_default_scope(base.get('default_scope', 'mmpretrain'))
    subjects = {}
    for name, options in variant_options(args).items():
        cfg = copy.deepcopy(base)
        cfg.merge_from_dict(options)
        subjects[name] = Subject(cfg, args)
    for name, subject in subjects.items():
        model = subject.model
        variant = dict(variant=name) if name else {}
        emit('setup', **variant, config=args.config, device=args.device,
             device_name=torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu',
             threads=torch.get_num_threads(), torch=torch.__version__, batch_size=args.batch_size,
             input_size=list(subject.size), amp=args.amp, warmup=args.warmup, iters=args.iters,
             with_cp=bool(getattr(model.backbone, 'with_cp', False)),
             load_average_1min=os.getloadavg()[0] if hasattr(os, 'getloadavg') else None)
        emit('parameters', **variant, trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
             total=sum(p.numel() for p in model.parameters()))
    if args.only != 'inference':
        steps = {('train_step', name): (subject.train_step(), {}) for name, subject in subjects.items()}
        for name, subject in subjects.items():
            if isinstance(subject.model, FeatureClassifier):
                step, width = subject.cached_features_step()
                steps[('train_step_cached_features', name)] = (step, dict(feature_width=width))
        measure(steps, args)
    if args.only != 'train':
        measure({('inference', name): subject.test_step() for name, subject in subjects.items()}, args)
        if args.tte:
            measure({('inference_tte', name): subject.test_step(tte=True) for name, subject in subjects.items()},
                    args)
    end_load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else None
    emit('done', load_average_1min=end_load)


if __name__ == '__main__':
    main()
