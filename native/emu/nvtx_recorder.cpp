// An NVTX injection library that writes every range push and pop to a file: what Nsight Systems would receive,
// without Nsight. Load it the way Nsight does, NVTX_INJECTION64_PATH=<this .so>, and name the log with
// LONGDEP_NVTX_LOG=<file>. One line per event, "<thread id>\tpush\t<name>" or "<thread id>\tpop".
// The few NVTX callback types are declared here (they match nvtx3/nvtxDetail/nvtxTypes.h), so no toolkit is needed.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <sys/syscall.h>
#include <unistd.h>

namespace {

using FunctionPointer = void (*)();
using FunctionTable = FunctionPointer**;

struct ExportTableCallbacks
{
    size_t struct_size;
    int (*GetModuleFunctionTable)(int module, FunctionTable* table, unsigned int* size);
};

using GetExportTable = const void* (*)(uint32_t id);

constexpr uint32_t kExportTableCallbacks = 1; // NVTX_ETID_CALLBACKS
constexpr int kModuleCore = 1;                // NVTX_CB_MODULE_CORE
constexpr unsigned kRangePushA = 9;           // NVTX_CBID_CORE_RangePushA
constexpr unsigned kRangePop = 11;            // NVTX_CBID_CORE_RangePop

std::mutex gate;
FILE* out = nullptr;

long thread_id() { return (long)syscall(SYS_gettid); }

int push_a(const char* message)
{
    std::lock_guard lock(gate);
    std::fprintf(out, "%ld\tpush\t%s\n", thread_id(), message != nullptr ? message : "");
    std::fflush(out);
    return 0;
}

int pop()
{
    std::lock_guard lock(gate);
    std::fprintf(out, "%ld\tpop\n", thread_id());
    std::fflush(out);
    return 0;
}

} // namespace

extern "C" __attribute__((visibility("default"))) int InitializeInjectionNvtx2(GetExportTable getExportTable)
{
    const char* path = std::getenv("LONGDEP_NVTX_LOG");
    if (path == nullptr || getExportTable == nullptr) return 0;
    const auto* callbacks = static_cast<const ExportTableCallbacks*>(getExportTable(kExportTableCallbacks));
    if (callbacks == nullptr || callbacks->GetModuleFunctionTable == nullptr) return 0;
    FunctionTable table = nullptr;
    unsigned int size = 0;
    if (!callbacks->GetModuleFunctionTable(kModuleCore, &table, &size) || table == nullptr || size <= kRangePop) return 0;
    out = std::fopen(path, "w");
    if (out == nullptr) return 0;
    *table[kRangePushA] = reinterpret_cast<FunctionPointer>(&push_a);
    *table[kRangePop] = reinterpret_cast<FunctionPointer>(&pop);
    return 1;
}
