// Unity translation unit: every kernel family in kernels/ compiled into one fatbin
// (build/native/longdep_kernels.fatbin). Add a new kernels/*.cu file here and its names to
// src/LongDep.Cuda/KernelNames.cs; a test checks that every listed name is in the fatbin.
#include "../kernels/embedding.cu"
#include "../kernels/rmsnorm.cu"
#include "../kernels/layernorm.cu"
#include "../kernels/rope.cu"
#include "../kernels/elementwise.cu"
#include "../kernels/swiglu.cu"
#include "../kernels/attention.cu"
#include "../kernels/pfs.cu"
#include "../kernels/loss.cu"
#include "../kernels/attention_mma.cu"
#include "../kernels/pfs_mma.cu"
