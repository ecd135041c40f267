from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ..work_dir_lock import WorkDirLock


@HOOKS.register_module()
class WorkDirLockHook(Hook):
    """Holds :class:`~lift_mm.engine.work_dir_lock.WorkDirLock` on the work dir while the run trains.

    A second training run in the same work dir fails before its first iteration, naming the run that holds it
    (pid, host, start time); a lock left by a killed run on this host is taken over with a warning. Only the main
    process takes the lock (data-parallel ranks share it). It is taken first among the ``before_train`` hooks
    (priority ``HIGHEST``), before any of them writes into the work dir, and released when the run ends, also
    when training fails with an exception (at exit). Testing and validation alone take no lock.
    """

    priority = 'HIGHEST'

    def __init__(self) -> None:
        self.lock = None

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        self.lock = WorkDirLock(runner.work_dir)
        stale = self.lock.acquire()
        if stale is not None:
            runner.logger.warning(
                f'WorkDirLockHook: took over {self.lock.path}, left by a training run that no longer runs '
                f"(pid {stale.get('pid')} on {stale.get('host')}, started {stale.get('started')}).")

    def after_run(self, runner) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None
