"""TileLang kernels for the front-end tests and bench, written in TileLang's DSL the way
TileLang's own examples write them (examples/elementwise, quickstart GEMM, reduce, dynamic
shapes, flash_attention/example_mha_fwd_bshd). Importing this module imports TileLang.

No `from __future__ import annotations` here: TileLang evaluates the parameter annotations.
"""

import tilelang.language as T


def elementwise_add(M, N, block_M=128, block_N=128, threads=128, dtype="float32"):
    """C = A + B over an M x N grid of block_M x block_N tiles."""

    @T.prim_func
    def elementwise_add(A: T.Tensor((M, N), dtype), B: T.Tensor((M, N), dtype),
                        C: T.Tensor((M, N), dtype)):
        with T.Kernel(T.ceildiv(N, block_N), T.ceildiv(M, block_M), threads=threads) as (bx, by):
            for i, j in T.Parallel(block_M, block_N):
                y, x = by * block_M + i, bx * block_N + j
                C[y, x] = A[y, x] + B[y, x]

    return elementwise_add


def matmul(M, N, K, block_M=128, block_N=128, block_K=32, num_stages=3, threads=128,
           dtype="float16", accum_dtype="float32"):
    """C = A @ B, fp16 in and out, fp32 accumulation; on sm_90a the copies become TMA loads and
    the kernel is warp-specialized."""

    @T.prim_func
    def matmul(A: T.Tensor((M, K), dtype), B: T.Tensor((K, N), dtype),
               C: T.Tensor((M, N), dtype)):
        with T.Kernel(T.ceildiv(N, block_N), T.ceildiv(M, block_M), threads=threads) as (bx, by):
            A_shared = T.alloc_shared((block_M, block_K), dtype)
            B_shared = T.alloc_shared((block_K, block_N), dtype)
            C_local = T.alloc_fragment((block_M, block_N), accum_dtype)
            T.clear(C_local)
            for ko in T.Pipelined(T.ceildiv(K, block_K), num_stages=num_stages):
                T.copy(A[by * block_M, ko * block_K], A_shared)
                T.copy(B[ko * block_K, bx * block_N], B_shared)
                T.gemm(A_shared, B_shared, C_local)
            T.copy(C_local, C[by * block_M, bx * block_N])

    return matmul


def row_sum(M, N, block_M=64, threads=128, dtype="float32"):
    """B[i] = sum_j A[i, j]: a fragment reduction (T.reduce_sum) across threads."""

    @T.prim_func
    def row_sum(A: T.Tensor((M, N), dtype), B: T.Tensor((M,), dtype)):
        with T.Kernel(T.ceildiv(M, block_M), threads=threads) as bx:
            A_local = T.alloc_fragment((block_M, N), dtype)
            B_local = T.alloc_fragment((block_M,), dtype)
            T.copy(A[bx * block_M, 0], A_local)
            T.reduce_sum(A_local, B_local, dim=1)
            T.copy(B_local, B[bx * block_M])

    return row_sum


def scaled_add_dynamic(block=256, dtype="float32"):
    """C = A + alpha * B over a dynamic length N: N becomes a shape variable, alpha a scalar."""
    N = T.dynamic("N")

    @T.prim_func
    def scaled_add(A: T.Tensor((N,), dtype), B: T.Tensor((N,), dtype),
                   C: T.Tensor((N,), dtype), alpha: T.float32):
        with T.Kernel(T.ceildiv(N, block), threads=block) as bx:
            for i in T.Parallel(block):
                if bx * block + i < N:
                    C[bx * block + i] = A[bx * block + i] + alpha * B[bx * block + i]

    return scaled_add


def flash_attention(batch, heads, seq_len, dim, block_M=64, block_N=64, num_stages=1,
                    threads=128):
    """Multi-head attention forward (BSHD layout, non-causal) with online softmax in base 2,
    as TileLang's example_mha_fwd_bshd computes it."""
    scale = (1.0 / dim) ** 0.5 * 1.44269504  # 1/sqrt(dim) * log2(e)
    shape = [batch, seq_len, heads, dim]
    dtype, accum = "float16", "float32"

    @T.prim_func
    def mha_fwd(Q: T.Tensor(shape, dtype), K: T.Tensor(shape, dtype), V: T.Tensor(shape, dtype),
                Output: T.Tensor(shape, dtype)):
        with T.Kernel(T.ceildiv(seq_len, block_M), heads, batch, threads=threads) as (bx, by, bz):
            Q_shared = T.alloc_shared([block_M, dim], dtype)
            K_shared = T.alloc_shared([block_N, dim], dtype)
            V_shared = T.alloc_shared([block_N, dim], dtype)
            O_shared = T.alloc_shared([block_M, dim], dtype)
            acc_s = T.alloc_fragment([block_M, block_N], accum)
            acc_s_cast = T.alloc_fragment([block_M, block_N], dtype)
            acc_o = T.alloc_fragment([block_M, dim], accum)
            row_max = T.alloc_fragment([block_M], accum)
            row_max_prev = T.alloc_fragment([block_M], accum)
            row_scale = T.alloc_fragment([block_M], accum)
            row_sum = T.alloc_fragment([block_M], accum)
            denominator = T.alloc_fragment([block_M], accum)

            T.copy(Q[bz, bx * block_M:(bx + 1) * block_M, by, :], Q_shared)
            T.fill(acc_o, 0)
            T.fill(denominator, 0)
            T.fill(row_max, -T.infinity(accum))
            for k in T.Pipelined(T.ceildiv(seq_len, block_N), num_stages=num_stages):
                # S = Q K^T for this block of keys
                T.copy(K[bz, k * block_N:(k + 1) * block_N, by, :], K_shared)
                T.clear(acc_s)
                T.gemm(Q_shared, K_shared, acc_s, transpose_B=True,
                       policy=T.GemmWarpPolicy.FullRow)
                # online softmax: new running max, rescale factor, exponentials, running sum
                T.copy(row_max, row_max_prev)
                T.fill(row_max, -T.infinity(accum))
                T.reduce_max(acc_s, row_max, dim=1, clear=False)
                for i in T.Parallel(block_M):
                    row_scale[i] = T.exp2(row_max_prev[i] * scale - row_max[i] * scale)
                for i, j in T.Parallel(block_M, block_N):
                    acc_s[i, j] = T.exp2(acc_s[i, j] * scale - row_max[i] * scale)
                T.reduce_sum(acc_s, row_sum, dim=1)
                for i in T.Parallel(block_M):
                    denominator[i] = denominator[i] * row_scale[i] + row_sum[i]
                T.copy(acc_s, acc_s_cast)
                # O = O * scale + P V
                for i, j in T.Parallel(block_M, dim):
                    acc_o[i, j] *= row_scale[i]
                T.copy(V[bz, k * block_N:(k + 1) * block_N, by, :], V_shared)
                T.gemm(acc_s_cast, V_shared, acc_o, policy=T.GemmWarpPolicy.FullRow)
            for i, j in T.Parallel(block_M, dim):
                acc_o[i, j] /= denominator[i]
            T.copy(acc_o, O_shared)
            T.copy(O_shared, Output[bz, bx * block_M:(bx + 1) * block_M, by, :])

    return mha_fwd


def convolution(N, C, H, W, F, K, S=1, D=1, P=1, block_M=64, block_N=128, block_K=32,
                num_stages=2, threads=128, dtype="float16", accum_dtype="float32"):
    """2-D convolution, NHWC data and KKCF weights, as an implicit GEMM whose data tiles
    T.im2col gathers (on sm_90a through an im2col TMA descriptor)."""
    KH = KW = K
    OH = (H + 2 * P - D * (K - 1) - 1) // S + 1
    OW = (W + 2 * P - D * (K - 1) - 1) // S + 1

    @T.prim_func
    def convolution(data: T.Tensor((N, H, W, C), dtype),
                    kernel: T.Tensor((KH, KW, C, F), dtype),
                    out: T.Tensor((N, OH, OW, F), dtype)):
        with T.Kernel(T.ceildiv(F, block_N), T.ceildiv(N * OH * OW, block_M),
                      threads=threads) as (bx, by):
            data_shared = T.alloc_shared((block_M, block_K), dtype)
            kernel_shared = T.alloc_shared((block_K, block_N), dtype)
            out_local = T.alloc_fragment((block_M, block_N), accum_dtype)
            kernel_flat = T.Tensor((KH * KW * C, F), dtype, kernel.data)
            out_flat = T.Tensor((N * OH * OW, F), dtype, out.data)
            T.clear(out_local)
            for k_iter in T.Pipelined(T.ceildiv(KH * KW * C, block_K), num_stages=num_stages):
                T.im2col(data, data_shared, by, k_iter, KH, S, D, P)
                T.copy(kernel_flat[k_iter * block_K, bx * block_N], kernel_shared)
                T.gemm(data_shared, kernel_shared, out_local)
            T.copy(out_local, out_flat[by * block_M, bx * block_N])

    return convolution


def add_l2_persistent(M, N, hit_ratio=0.5, block=128, dtype="float32"):
    """C = A + B with A marked to persist in L2 (T.annotate_l2_hit_ratio)."""

    @T.prim_func
    def add_l2_persistent(A: T.Tensor((M, N), dtype), B: T.Tensor((M, N), dtype),
                          C: T.Tensor((M, N), dtype)):
        with T.Kernel(T.ceildiv(N, block), T.ceildiv(M, block), threads=128) as (bx, by):
            T.annotate_l2_hit_ratio({A: hit_ratio})
            for i, j in T.Parallel(block, block):
                C[by * block + i, bx * block + j] = (A[by * block + i, bx * block + j] +
                                                     B[by * block + i, bx * block + j])

    return add_l2_persistent


def add_in_clusters(M, N, cluster=(2, 1, 1), block=128, dtype="float32"):
    """C = A + B, launched in thread block clusters (Hopper)."""

    @T.prim_func
    def add_in_clusters(A: T.Tensor((M, N), dtype), B: T.Tensor((M, N), dtype),
                        C: T.Tensor((M, N), dtype)):
        with T.Kernel(T.ceildiv(N, block), T.ceildiv(M, block), threads=128,
                      cluster_dims=cluster) as (bx, by):
            for i, j in T.Parallel(block, block):
                C[by * block + i, bx * block + j] = (A[by * block + i, bx * block + j] +
                                                     B[by * block + i, bx * block + j])

    return add_in_clusters


def add_with_pdl(M, N, block=128, dtype="float32"):
    """C = A + B as a programmatic-dependent-launch kernel (T.pdl_sync / T.pdl_trigger)."""

    @T.prim_func
    def add_with_pdl(A: T.Tensor((M, N), dtype), B: T.Tensor((M, N), dtype),
                     C: T.Tensor((M, N), dtype)):
        with T.Kernel(T.ceildiv(N, block), T.ceildiv(M, block), threads=128) as (bx, by):
            T.pdl_sync()
            for i, j in T.Parallel(block, block):
                C[by * block + i, bx * block + j] = (A[by * block + i, bx * block + j] +
                                                     B[by * block + i, bx * block + j])
            T.pdl_trigger()

    return add_with_pdl
