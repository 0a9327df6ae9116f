// tilejit._core: the nanobind module behind the `tilejit` package.
#include <nanobind/nanobind.h>

#include "bindings.h"
#include "dlpack_exchange.h"
#include "exception_translation.h"

NB_MODULE(_core, m) {
  m.doc() = "tilejit's C++ core: Program model, compile, and the kernel call path.";
  // Kernels registered as torch operators (tilejit/torch_op.py) stay in torch's operator
  // registry until the interpreter is torn down, after this module: nanobind would report
  // them as leaks at every exit of such a process.
  nanobind::set_leak_warnings(false);
  tilejit::python::bind_errors(m);
  tilejit::python::bind_program(m);
  tilejit::python::bind_dlpack_tensor(m);
  tilejit::python::bind_kernel(m);
  tilejit::python::bind_jit(m);
  tilejit::python::bind_bench(m);
  tilejit::python::bind_cache(m);
}
