// tilejit/jit.h — the seed's `jit` decorator for C++: memoized compiles of a Program family.
//
// Lazy mode: a function from compile-time arguments to a Program. Calling the jit object
// compiles once per distinct argument tuple and returns the Kernel.
//
//   auto matmul = tilejit::jit([](int M, int N, int K) { return make_matmul(M, N, K); },
//                              {.out_idx = std::vector<int>{-1}});
//   tilejit::Kernel k = matmul(1024, 1024, 512);   // compiled (or loaded from the cache)
//   auto outs = k({A, B});
//   matmul.parse_cache_key(1024, 1024, 512);        // == matmul(1024, 1024, 512).cache_key()
//   auto kernels = matmul.par_compile({{128, 128, 64}, {256, 256, 64}});
//
// Eager mode: a function from the call's argument specs (tensor dtypes, shapes, devices;
// scalar kinds) to a Program. Calling the jit object with the arguments themselves
// specializes, compiles (memoized on those specs) and runs at once.
//
//   auto add = tilejit::jit([](const tilejit::ArgSpecs& specs) { return add_for(specs[0].dtype);
//   }); add({A, B, C});                                  // compiles for A's dtype/shapes, runs
//
// The memo keys on the arguments (lazy) or the specs (eager); behind it is compile(), with
// its memory and disk caches, so a new jit object over the same function finds its kernels
// on disk. The function may be called from several threads at once (par_compile).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tilejit/detail/jit_support.h"
#include "tilejit/kernel.h"

namespace tilejit {

// What eager mode specializes on, for one argument of a call.
struct ArgSpec {
  Arg::Kind kind = Arg::Kind::kTensor;
  DataType dtype;              // tensors only
  std::vector<int64_t> shape;  // tensors only
  Device device;               // tensors only
};
using ArgSpecs = std::vector<ArgSpec>;

// The cache key compile(program, options) uses: SHA-256 hex (docs/cache.md). Builds nothing,
// with one exception: a Program with user include directories that was never compiled here or
// into the disk cache is compiled (and stored) once, because its key covers the headers the
// compiler reads, which only a build reports.
std::string cache_key(const Program& program, const CompileOptions& options = {});

template <class Fn>
class Jit {
 public:
  // The compile-time arguments of lazy mode, as a tuple (what par_compile takes).
  using Args = typename detail::FunctionTraits<Fn>::Args;
  static constexpr bool kEager = std::is_same_v<Args, std::tuple<ArgSpecs>>;

  Jit(Fn fn, CompileOptions options)
      : state_(std::make_shared<State>(std::move(fn), std::move(options))) {}

  // Lazy mode: the Kernel for these compile-time arguments, compiled on first use.
  template <class... A>
  requires(!kEager && std::is_constructible_v<Args, A...>) Kernel operator()(A&&... args) const {
    return kernel_for(Args(std::forward<A>(args)...));
  }

  // Eager mode: specializes on the arguments' specs, compiles (once per distinct specs) and
  // runs on `stream`; returns the out_idx outputs.
  std::vector<Tensor> operator()(std::span<const Arg> args,
                                 StreamRef stream = {}) const requires kEager {
    return eager_kernel(args)(args, stream);
  }
  std::vector<Tensor> operator()(std::initializer_list<Arg> args,
                                 StreamRef stream = {}) const requires kEager {
    return (*this)(std::span<const Arg>(args.begin(), args.size()), stream);
  }
  // Eager mode without running: the Kernel these arguments would run.
  Kernel eager_kernel(std::span<const Arg> args) const requires kEager {
    const uint64_t hash = detail::hash_arg_specs(args);
    {
      std::lock_guard lock(state_->mutex);
      auto [first, last] = state_->eager_memo.equal_range(hash);
      for (auto it = first; it != last; ++it) {
        if (detail::arg_specs_match(it->second.first, args)) return it->second.second;
      }
    }
    ArgSpecs specs = detail::arg_specs(args);
    Kernel kernel = compile(state_->fn(specs), state_->options);
    std::lock_guard lock(state_->mutex);
    auto [first, last] = state_->eager_memo.equal_range(hash);
    for (auto it = first; it != last; ++it) {  // another thread got here first
      if (detail::arg_specs_match(it->second.first, args)) return it->second.second;
    }
    state_->eager_memo.emplace(hash, std::make_pair(std::move(specs), kernel));
    return kernel;
  }

  // The cache key (SHA-256 hex) of the Program these arguments produce, which is the key of
  // the Kernel they get; Python's JITImpl.parse_cache_key means the same (docs/seed-compat.md).
  // tilejit::cache_key: no compile but for the first key of a Program with include dirs.
  template <class... A>
  requires(!kEager && std::is_constructible_v<Args, A...>) std::string parse_cache_key(A&&... args)
  const {
    return cache_key(std::apply(state_->fn, Args(std::forward<A>(args)...)), state_->options);
  }
  template <class... A>
  requires(!kEager && std::is_constructible_v<Args, A...>) std::string
      get_kernel_source(A&&... args)
  const { return (*this)(std::forward<A>(args)...).get_kernel_source(); }

  // Compiles every configuration in parallel; see tilejit::par_compile for the contract.
  std::vector<Kernel> par_compile(std::span<const Args> configs, int num_workers = 0,
                                  bool ignore_error = false) const requires(!kEager) {
    return detail::par_compile_tasks(
        configs.size(),
        [&](size_t i) {
          {
            std::lock_guard lock(state_->mutex);
            if (auto it = state_->memo.find(configs[i]); it != state_->memo.end())
              return detail::CompileReport{it->second, true};
          }
          detail::CompileReport report =
              detail::par_compile_one(std::apply(state_->fn, configs[i]), state_->options);
          std::lock_guard lock(state_->mutex);
          state_->memo.try_emplace(configs[i], report.kernel);
          return report;
        },
        [](size_t i) { return "configuration " + std::to_string(i); }, num_workers, ignore_error);
  }
  std::vector<Kernel> par_compile(std::initializer_list<Args> configs, int num_workers = 0,
                                  bool ignore_error = false) const requires(!kEager) {
    return par_compile(std::span<const Args>(configs.begin(), configs.size()), num_workers,
                       ignore_error);
  }

  const CompileOptions& options() const { return state_->options; }

 private:
  struct State {
    State(Fn f, CompileOptions o) : fn(std::move(f)), options(std::move(o)) {}
    Fn fn;
    CompileOptions options;
    // Names this State in each thread's LastHit: unique in the process, where an address could
    // be reused by a later Jit.
    const uint64_t id = detail::next_jit_id();
    std::mutex mutex;  // guards the memos; never held while compiling
    std::unordered_map<Args, Kernel, detail::TupleHash> memo;
    std::unordered_multimap<uint64_t, std::pair<ArgSpecs, Kernel>> eager_memo;
  };

  // Each thread's last lazy-mode hit, per Jit type: a repeat of it takes neither the mutex
  // nor a hash (in a process with threads the mutex's two atomic operations were half of a
  // hit). It holds its Kernel until the thread's next hit of another Jit or arguments, or
  // its exit.
  struct LastHit {
    uint64_t state_id = 0;
    std::optional<Args> args;
    Kernel kernel;
  };

  Kernel kernel_for(const Args& args) const {
    thread_local LastHit last;
    if (last.state_id == state_->id && *last.args == args) return last.kernel;
    Kernel kernel;
    {
      std::lock_guard lock(state_->mutex);
      if (auto it = state_->memo.find(args); it != state_->memo.end()) kernel = it->second;
    }
    if (!kernel) {
      // Two threads may both get here for new arguments; compile() builds the kernel once.
      Kernel built = compile(std::apply(state_->fn, args), state_->options);
      std::lock_guard lock(state_->mutex);
      kernel = state_->memo.try_emplace(args, std::move(built)).first->second;
    }
    last.state_id = state_->id;
    last.args = args;
    last.kernel = kernel;
    return kernel;
  }

  std::shared_ptr<State> state_;
};

// Wraps `fn` (compile-time arguments -> Program, or const ArgSpecs& -> Program for eager mode).
template <class Fn>
Jit<std::decay_t<Fn>> jit(Fn&& fn, CompileOptions options = {}) {
  return Jit<std::decay_t<Fn>>(std::forward<Fn>(fn), std::move(options));
}

}  // namespace tilejit
