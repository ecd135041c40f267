"""Running demo configs in tests: in-process runners and the tools in subprocesses, on one CPU thread each.

Test machines are small and shared; one thread per process avoids the oversubscription that makes tiny models
many times slower when several processes compete for few cores.
"""
import contextlib
import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from lift_mm.engine import setup_distributed_without_cuda

REPO = Path(__file__).resolve().parents[1]
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
METRIC = re.compile(r'long_tail/(\w+): ([\d.]+)')
# Python warnings (`file:line: UserWarning: ...`), MMEngine's WARNING / ERROR records, C++ warnings (`[W1202 ...`)
# and PyTorch profiler (kineto) log lines.
WARNING_LINE = re.compile(r'\w+Warning: |- (WARNING|ERROR) - |^\[W\d{4} |^(WARNING|ERROR|USDT|STAGE|INFO):\d{4}-')


def data_options(data_root) -> Dict[str, object]:
    """Options that point every loader of a demo config at ``data_root``."""
    return {f'{loader}.dataset.data_root': str(data_root) for loader in LOADERS}


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def demo_runner(config: str, work_dir, data_root, options: Dict[str, object] = None,
                launcher: str = 'none', edit: Optional[Callable[[Config], None]] = None,
                validate: bool = False) -> Runner:
    """A runner of ``config`` with loaders in the main process, no validation unless ``validate``, and
    ``options`` merged last; ``edit`` then changes the config in place, as a tool would.

    With ``launcher='pytorch'`` the process joins the CPU process group that ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR`` and ``MASTER_PORT`` describe, as the tools do.
    """
    cfg = Config.fromfile(str(REPO / config))
    merged = dict(data_options(data_root), work_dir=str(work_dir), log_level='WARNING')
    for loader in LOADERS:
        merged.update({f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False})
    merged.update(options or {})
    cfg.merge_from_dict(merged)
    if edit is not None:
        edit(cfg)
    if not validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    # Runners of one process need distinct names for their message hubs and loggers.
    cfg.experiment_name = f'{Path(config).stem}_{Path(work_dir).name}'
    cfg.launcher = launcher
    setup_distributed_without_cuda(cfg, launcher)
    return Runner.from_cfg(cfg)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tool_environment(**variables: str) -> Dict[str, str]:
    """Environment of a tool run by a test, one thread per process; the ``python`` of the launch scripts
    (``tools/dist_train.sh``, ...) is the interpreter running the tests, even in a virtual environment that is
    not activated."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get('PATH', '')])
    return {**os.environ, 'PATH': path, 'OMP_NUM_THREADS': '1', **variables}


def run_tool(args: Sequence[str], work_dir, data_root, options: Sequence[str] = (), env=None) -> str:
    """Run a tool of the repository on the demo data; returns its output (stdout and stderr)."""
    command = [*args, '--work-dir', str(work_dir), '--cfg-options',
               *(f'{key}={value}' for key, value in data_options(data_root).items()), *options]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=tool_environment(**(env or {})))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def run_test_tool(config: str, checkpoint, work_dir, data_root, flags: Sequence[str] = (),
                  options: Sequence[str] = (), processes: int = 1) -> str:
    """``tools/test.py`` (``tools/dist_test.sh`` for several processes) with ``flags`` and ``--cfg-options``."""
    if processes == 1:
        return run_tool([sys.executable, 'tools/test.py', config, str(checkpoint), *flags], work_dir, data_root,
                        options)
    return run_tool(['bash', 'tools/dist_test.sh', config, str(checkpoint), str(processes), *flags], work_dir,
                    data_root, options, env=dict(PORT=str(free_port())))


def last_metrics(log: str) -> Dict[str, float]:
    """The long-tail metrics of the last evaluation in ``log``."""
    lines = [line for line in log.splitlines() if 'long_tail/top1' in line]
    assert lines, 'no long-tail metrics in the log:\n' + log[-3000:]
    return {name: float(value) for name, value in METRIC.findall(lines[-1])}


def warning_lines(log: str) -> List[str]:
    """The lines of ``log`` that are warnings or errors (:data:`WARNING_LINE`)."""
    return [line for line in log.splitlines() if WARNING_LINE.search(line)]


def load_tool(name: str):
    """The script ``tools/analysis/<name>.py`` imported as a module named ``name``."""
    spec = importlib.util.spec_from_file_location(name, REPO / 'tools' / 'analysis' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    # Worker processes find the tool's functions by module name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
