"""The shell launchers hand each argument to the right place of torchrun / srun and of the tool they start.

``python`` and ``srun`` are replaced by stand-ins on PATH that write their arguments, one per line, to a file.
"""
import os
import subprocess

import pytest

from demo_runs import REPO

TOOLS = REPO / 'tools'


@pytest.fixture
def recorded(tmp_path):
    """Run a launcher with recording stand-ins; return the list of arguments a stand-in received."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    record = tmp_path / 'argv.txt'
    for name in ('python', 'srun'):
        stand_in = bin_dir / name
        stand_in.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {record}\n')
        stand_in.chmod(0o755)

    def run(script, *args, env=None):
        subprocess.run(['bash', str(TOOLS / script), *args], check=True, cwd=tmp_path,
                       env=dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', **(env or {})))
        return record.read_text().splitlines()
    return run


def test_dist_train_starts_one_train_process_per_device(recorded):
    argv = recorded('dist_train.sh', 'cfg.py', '4', '--amp', '--cfg-options', 'a=1',
                    env=dict(NNODES='2', NODE_RANK='1', PORT='29611', MASTER_ADDR='10.0.0.1'))
    assert argv == ['-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1', '--master_addr=10.0.0.1',
                    '--nproc_per_node=4', '--master_port=29611', f'{TOOLS}/train.py', 'cfg.py', '--amp',
                    '--cfg-options', 'a=1', '--launcher', 'pytorch']


def test_dist_test_passes_the_checkpoint_to_the_test_tool(recorded):
    argv = recorded('dist_test.sh', 'cfg.py', 'epoch_10.pth', '8', '--tta')
    assert argv == ['-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0', '--master_addr=127.0.0.1',
                    '--nproc_per_node=8', '--master_port=29500', f'{TOOLS}/test.py', 'cfg.py', 'epoch_10.pth',
                    '--tta', '--launcher', 'pytorch']


def test_slurm_train_runs_the_train_tool_as_a_job_step(recorded):
    argv = recorded('slurm_train.sh', 'gpu', 'lift', 'cfg.py', 'work', '--resume',
                    env=dict(GPUS='16', GPUS_PER_NODE='8', CPUS_PER_TASK='6', SRUN_ARGS='--quotatype=auto'))
    assert argv == ['-p', 'gpu', '--job-name=lift', '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8',
                    '--cpus-per-task=6', '--kill-on-bad-exit=1', '--quotatype=auto', 'python', '-u',
                    f'{TOOLS}/train.py', 'cfg.py', '--work-dir=work', '--resume', '--launcher=slurm']


def test_slurm_test_runs_the_test_tool_as_a_job_step(recorded):
    argv = recorded('slurm_test.sh', 'gpu', 'lift', 'cfg.py', 'epoch_10.pth', '--tta')
    assert argv == ['-p', 'gpu', '--job-name=lift', '--gres=gpu:8', '--ntasks=8', '--ntasks-per-node=8',
                    '--cpus-per-task=5', '--kill-on-bad-exit=1', 'python', '-u', f'{TOOLS}/test.py', 'cfg.py',
                    'epoch_10.pth', '--tta', '--launcher=slurm']
