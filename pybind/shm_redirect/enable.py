"""``import shm_redirect.enable``: the one line that turns shm-redirect on where no start-up hook
runs: above all the handler module of an AWS Lambda zip package. Lambda never reads ``.pth``
files in /var/task (it is not a site directory), and a ``sitecustomize`` there is never found
(site imports it before the runtime puts /var/task on sys.path).

Put it first in the handler module: it calls shm_redirect.activation.activate.activate(), which
here (not at interpreter start) never re-executes the process but patches it:
  * in this process: Python's multiprocessing -- SemLock (Lock, RLock, Semaphore, Condition,
    Event, Barrier, Queue, JoinableQueue, Pool, Value, Array), shared_memory, the heap of
    sharedctypes, the resource tracker; and concurrent.futures' ProcessPoolExecutor through it;
  * every child process: LD_PRELOAD is exported, so each child (spawn and forkserver processes,
    Pool and ProcessPoolExecutor workers, the manager's server, any subprocess) runs with the
    preload from its first instruction, C extensions included; fork children inherit the patch.
Not covered in this first process, where only the layer's wrapper (AWS_LAMBDA_EXEC_WRAPPER,
LD_PRELOAD from the start) helps: C code calling shm_open/sem_open itself (e.g. PyTorch's
shared-memory tensors made in the handler's own process), code that checks
os.statvfs('/dev/shm'), and libraries that bound _multiprocessing.SemLock at their own import
before this line ran (joblib/loky, billiard: import them after it).
Where /dev/shm works it does nothing (activate()'s probe); SHM_REDIRECT=off disables it.
"""
from .activation.activate import activate as _activate

_activate()
