// The first program to read: describe a kernel, compile it at run time, call it, check it.
//
//   ./example_vector_add        # prints PASS (exit 0) or FAIL (exit 1)
#include <cstdio>
#include <random>
#include <vector>

#include <tilejit/tilejit.h>

namespace {

// A plain C function: tilejit compiles it with the host compiler and calls it with checked
// arguments. `n` is not passed by the caller: it is read from the tensors' shapes.
constexpr const char* kSource = R"(
void vector_add(const float* A, const float* B, float* C, int n) {
  for (int i = 0; i < n; ++i) C[i] = A[i] + B[i];
}
)";

}  // namespace

int main() {
  try {
    const tilejit::Program program = tilejit::ProgramBuilder("vector_add")
                                         .source(kSource, tilejit::Language::kC)
                                         .tensor("A", "float32", {"n"})
                                         .tensor("B", "float32", {"n"})
                                         .tensor("C", "float32", {"n"})
                                         .launch(tilejit::Launch("vector_add"))
                                         .out_idx({-1})  // C is allocated and returned
                                         .build();
    const tilejit::Kernel kernel = tilejit::compile(program);

    std::mt19937 rng(2024);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    int failures = 0;
    for (int64_t n : {1, 100, 1023, 4097}) {
      std::vector<float> a(n), b(n);
      for (int64_t i = 0; i < n; ++i) {
        a[i] = dist(rng);
        b[i] = dist(rng);
      }
      tilejit::TensorView A(a.data(), "float32", {n});
      tilejit::TensorView B(b.data(), "float32", {n});
      std::vector<tilejit::Tensor> outputs = kernel({A, B});
      const float* c = outputs[0].data<float>();
      for (int64_t i = 0; i < n; ++i) failures += c[i] != a[i] + b[i];
      std::printf("vector_add n=%lld: %s\n", static_cast<long long>(n),
                  failures == 0 ? "matches the reference" : "MISMATCH");
    }
    std::puts(failures == 0 ? "PASS" : "FAIL");
    return failures == 0 ? 0 : 1;
  } catch (const tilejit::Error& e) {
    std::fprintf(stderr, "tilejit error: %s\nFAIL\n", e.what());
    return 1;
  }
}
