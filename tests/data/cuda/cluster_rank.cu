// Each block records its rank in its cluster and the cluster's size in blocks.
extern "C" __global__ void cluster_rank(int* __restrict__ ranks, int* __restrict__ sizes) {
  unsigned rank = 0;
  unsigned size = 0;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(size));
  if (threadIdx.x == 0) {
    ranks[blockIdx.x] = static_cast<int>(rank);
    sizes[blockIdx.x] = static_cast<int>(size);
  }
}
