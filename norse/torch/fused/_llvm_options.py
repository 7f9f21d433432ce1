"""LLVM's loop-interleave count for chosen Numba kernels: the one place that sets it.

Why this exists: a lane loop of the generated forward neuron kernels
(:mod:`.generate.numba_source`) is one chain
of dependent operations per lane, and LLVM's vectoriser, left to its cost model,
interleaves one vector iteration at a time, so the CPU stalls on each chain before it
reaches the independent lanes next to it. Asking LLVM to interleave several vector
iterations makes the forward kernels run at memory speed (the measurements are in
``benchmarks/RESULTS.md``).

Neither Numba nor llvmlite offers a supported way to ask this of one function: Numba's
settings of the vectoriser (``NUMBA_OPT``, ``NUMBA_LOOP_VECTORIZE``,
``NUMBA_SLP_VECTORIZE``) do not include the interleave count, and LLVM takes
``--force-vector-interleave`` only as a process-wide command-line option
(:func:`llvmlite.binding.set_option`). This module therefore

* sets the option only while Numba's global compiler lock is held, so no other
  compilation in the process (ours or anyone's) sees it, and puts LLVM's default back
  afterwards (``0``: the cost model decides; llvmlite cannot read an option, so a value
  set process-wide by someone else would not survive a compilation here);
* runs a dispatcher's compilations inside that option by wrapping Numba's private
  ``Dispatcher._compile_for_args``, the method a dispatcher calls when it meets a new
  signature of argument types (compiling, or loading from its disk cache). A Numba
  release without that method leaves the kernel as it is: it compiles with LLVM's
  default, gives the same results and only runs slower.

Nothing else in the package touches LLVM options or Numba's private methods.
"""

import contextlib
from typing import Iterator, TypeVar

import llvmlite.binding as llvm
from numba.core.compiler_lock import global_compiler_lock

#: LLVM's default of ``--force-vector-interleave`` (the cost model decides).
DEFAULT_INTERLEAVE = 0

Dispatcher = TypeVar("Dispatcher")


@contextlib.contextmanager
def interleaving(count: int) -> Iterator[None]:
    """Numba compilations inside the block interleave ``count`` vector iterations of
    their vectorised loops; LLVM's default applies again on leaving it.

    Holds Numba's (reentrant) global compiler lock for the whole block, so that the
    process-wide option reaches only the compilations made inside."""
    with global_compiler_lock:
        llvm.set_option("", f"--force-vector-interleave={int(count)}")
        try:
            yield
        finally:
            llvm.set_option("", f"--force-vector-interleave={DEFAULT_INTERLEAVE}")


def compile_interleaved(dispatcher: Dispatcher, count: int) -> Dispatcher:
    """``dispatcher`` (a Numba ``@njit`` function), made to compile each new signature
    inside :func:`interleaving` ``(count)``; calls of signatures already compiled run
    as before, outside the lock. Returns the same dispatcher."""
    compile_for_args = getattr(dispatcher, "_compile_for_args", None)
    if not count or compile_for_args is None:
        return dispatcher

    def compile_inside_option(*args, **kwargs):
        with interleaving(count):
            return compile_for_args(*args, **kwargs)

    dispatcher._compile_for_args = compile_inside_option
    return dispatcher
