/* A plain C program calling a kernel exported by `tilejit export`: no tilejit at run time,
 * only the exported libsaxpy.so and its header. See README.md next to this file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "saxpy.h"

/* A small deterministic generator, so that a failure reproduces. */
static float next_value(uint32_t* state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)(*state >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
}

int main(void) {
  const int32_t n = 1001; /* odd on purpose */
  const float alpha = 1.75f;
  float* x = malloc(sizeof(float) * (size_t)n);
  float* y = malloc(sizeof(float) * (size_t)n);
  float* expected = malloc(sizeof(float) * (size_t)n);
  if (x == NULL || y == NULL || expected == NULL) return 2;
  uint32_t state = 12345u;
  for (int32_t i = 0; i < n; ++i) {
    x[i] = next_value(&state);
    y[i] = next_value(&state);
    expected[i] = alpha * x[i] + y[i];
  }

  /* call() takes the tensors and scalars in the Program's order, then its shape variables. */
  if (init() != 0 || call(x, y, alpha, n) != 0) {
    fprintf(stderr, "saxpy failed: %s\n", get_last_error());
    return 1;
  }

  int mismatches = 0;
  for (int32_t i = 0; i < n; ++i) {
    if (y[i] != expected[i]) {
      if (mismatches < 5) fprintf(stderr, "y[%d] = %g, expected %g\n", i, y[i], expected[i]);
      ++mismatches;
    }
  }
  printf("%s: %d of %d elements match\n", mismatches == 0 ? "PASS" : "FAIL", n - mismatches, n);
  free(x);
  free(y);
  free(expected);
  return mismatches == 0 ? 0 : 1;
}
