// tilejit._core: the nanobind module behind the `tilejit` package.
#include <nanobind/nanobind.h>

#include "bindings.h"
#include "dlpack_exchange.h"
#include "exception_translation.h"

NB_MODULE(_core, m) {
  m.doc() = "tilejit's C++ core: Program model, compile, and the kernel call path.";
  tilejit::python::bind_errors(m);
  tilejit::python::bind_program(m);
  tilejit::python::bind_dlpack_tensor(m);
  tilejit::python::bind_kernel(m);
  tilejit::python::bind_bench(m);
}
