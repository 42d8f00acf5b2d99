/* NVTX ranges for the managed host. Since CUDA 12 NVTX3 is header-only (no libnvToolsExt.so to
 * P/Invoke), so this tiny library exports two plain C functions the host can load when present.
 * Built by native/build-kernels.sh (or native/CMakeLists.txt) into liblongdep_nvtx.so. */
#include <nvtx3/nvToolsExt.h>

#if defined(_WIN32)
#define LONGDEP_EXPORT __declspec(dllexport)
#else
#define LONGDEP_EXPORT __attribute__((visibility("default")))
#endif

LONGDEP_EXPORT void longdep_nvtx_push(const char* name)
{
    nvtxRangePushA(name);
}

LONGDEP_EXPORT void longdep_nvtx_pop(void)
{
    nvtxRangePop();
}
