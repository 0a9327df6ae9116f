// What the templates of tilejit/jit.h need from the library and from each other: the
// par_compile pool, argument specs, the traits of the wrapped function, a tuple hash. Not API:
// names in tilejit::detail may change in any release.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "tilejit/kernel.h"

namespace tilejit {

struct ArgSpec;  // tilejit/jit.h

namespace detail {

struct CompileReport {
  Kernel kernel;
  bool cache_hit = false;  // memory or disk
};
// compile() for par_compile: reports cache hits, and runs an in-process compiler (NVRTC) in a
// worker process so that N compiles really run N at a time.
CompileReport par_compile_one(const Program& program, const CompileOptions& options);

// par_compile's worker count, in C++ and Python alike: num_workers when > 0, else the CPUs
// this process may run on (its affinity mask); never more than `count` (at least 1).
size_t par_compile_workers(size_t count, int num_workers);

// The pool behind par_compile: runs task(0..count-1) on par_compile_workers(count,
// num_workers) threads, results in input order. describe(i) names item i in error messages.
std::vector<Kernel> par_compile_tasks(size_t count,
                                      const std::function<CompileReport(size_t)>& task,
                                      const std::function<std::string(size_t)>& describe,
                                      int num_workers, bool ignore_error);

std::vector<ArgSpec> arg_specs(std::span<const Arg> args);
uint64_t hash_arg_specs(std::span<const Arg> args);
bool arg_specs_match(const std::vector<ArgSpec>& specs, std::span<const Arg> args);
// 1, 2, 3, ...: a new one for every Jit, never reused in the process.
uint64_t next_jit_id();

template <class T>
struct FunctionTraits : FunctionTraits<decltype(&T::operator())> {};
template <class R, class... A>
struct FunctionTraits<R (*)(A...)> {
  using Args = std::tuple<std::decay_t<A>...>;
};
template <class R, class... A>
struct FunctionTraits<R(A...)> : FunctionTraits<R (*)(A...)> {};
template <class R, class C, class... A>
struct FunctionTraits<R (C::*)(A...) const> : FunctionTraits<R (*)(A...)> {};
template <class R, class C, class... A>
struct FunctionTraits<R (C::*)(A...)> : FunctionTraits<R (*)(A...)> {};

struct TupleHash {
  template <class Tuple>
  size_t operator()(const Tuple& tuple) const {
    return std::apply(
        [](const auto&... values) {
          size_t seed = 0x9e3779b97f4a7c15ULL;
          ((seed ^= std::hash<std::decay_t<decltype(values)>>{}(values) + 0x9e3779b97f4a7c15ULL +
                    (seed << 6) + (seed >> 2)),
           ...);
          return seed;
        },
        tuple);
  }
};

}  // namespace detail

}  // namespace tilejit
