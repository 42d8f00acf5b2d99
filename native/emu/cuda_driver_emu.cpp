// An emulated CUDA device for machines without a GPU: the CUDA driver API and the cuBLAS entry points the host
// imports (src/LongDep.Cuda/Native/DriverApi.cs, BlasApi.cs), implemented on the CPU over the kernel emulator
// (liblongdep_kernel_emu.so). build-emulator.sh installs it as <out>/emu-cuda/lib64/libcuda.so.1 with
// libcublas.so.12 a link to the same file, so that `CUDA_HOME=<out>/emu-cuda longdep ... --device cuda` runs the
// real host path (library search, P/Invoke signatures, argument packing, contexts, streams, copies, events, the
// GEMM calls, error handling) with the kernels' own source.
//
// It keeps what a GPU would enforce, and checks more:
// - work queued on a stream runs only when the host synchronizes (stream, event, context, a copy to pageable host
//   memory, a free): a result read before its synchronization is still NaN, a pinned source overwritten before its
//   copy ran is copied as it is then; kernel arguments are copied at the launch call, as the driver does;
// - the current context is per thread; streams, functions and handles belong to one context; kernel pointer
//   arguments must lie in device memory of the launching device;
// - device memory starts as 0xFF bytes (NaN) and every allocation is followed by a 4 KiB guard checked after each
//   kernel and GEMM: a write past an end is CUDA_ERROR_ILLEGAL_ADDRESS, sticky for the context, with the kernel and
//   the allocation in cuGetErrorString's text;
// - dynamic shared memory over 48 KiB needs cuFuncSetAttribute first; limits are an H100's.
// Modules: nvcc's fatbin, a cubin or PTX, or, where nvcc is missing, the emulator's own image (emu-cuda/
// longdep_kernels.emu: the names of the kernels liblongdep_kernel_emu.so holds); a kernel must be named in the image.
// Environment: LONGDEP_EMU_DEVICES (GPUs, default 1), LONGDEP_EMU_MEMORY (bytes per GPU, K/M/G suffixes, default
// 80G), LONGDEP_EMU_FAIL=D:N (the N-th kernel run on device D fails with CUDA_ERROR_LAUNCH_FAILED).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "half_bits.h"

extern "C" {
int longdep_emu_launch(const char* name, const unsigned* grid, const unsigned* block, int sharedBytes, void** args,
                       char* error, int errorBytes);
const char* longdep_emu_kernel_signature(const char* name);
}

namespace {

// The first bytes of the kernel emulator's image (native/emu/emulator_image.cpp), NUL included.
constexpr char kEmulatorImageMagic[] = "longdep kernel emulator image";

enum Result : int
{
    kSuccess = 0,
    kInvalidValue = 1,
    kOutOfMemory = 2,
    kNotInitialized = 3,
    kInvalidDevice = 101,
    kInvalidImage = 200,
    kInvalidContext = 201,
    kInvalidHandle = 400,
    kNotFound = 500,
    kNotReady = 600,
    kIllegalAddress = 700,
    kLaunchFailed = 719,
};

struct ErrorText
{
    int code;
    const char* name;
    const char* text;
};

constexpr ErrorText kErrors[] = {
    {kSuccess, "CUDA_SUCCESS", "no error"},
    {kInvalidValue, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {kOutOfMemory, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {kNotInitialized, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {kInvalidDevice, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {kInvalidImage, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {kInvalidContext, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {kInvalidHandle, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {kNotFound, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {kNotReady, "CUDA_ERROR_NOT_READY", "device not ready"},
    {kIllegalAddress, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {kLaunchFailed, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
};

constexpr size_t kGuardBytes = 4096;
constexpr unsigned char kGuardByte = 0xA7;
constexpr int kDefaultSharedLimit = 48 * 1024;
constexpr int kMaxSharedOptin = 232448; // H100: 227 KiB per block
constexpr int kSmCount = 132;

struct Context;

struct Stream
{
    Context* ctx = nullptr;
    std::deque<std::function<int()>> ops;
};

struct Context
{
    int device = 0;
    int retained = 0;
    int sticky = kSuccess;
    const char* sticky_text = nullptr; // why, when the emulator knows
    Stream null_stream;
    std::set<Stream*> streams;
    long long kernels_run = 0;
};

struct Allocation
{
    unsigned char* base = nullptr;
    size_t size = 0;
    int device = -1; // -1: pinned host memory
};

struct Module
{
    Context* ctx = nullptr;
    std::vector<unsigned char> image;
};

struct Function
{
    Module* module = nullptr;
    std::string name;
    std::string signature;
    int max_dynamic_shared = kDefaultSharedLimit;
};

struct Event
{
    Context* ctx = nullptr;
    Stream* stream = nullptr;
    bool recorded = false;
    bool done = false;
    double ms = 0;
};

struct Blas
{
    Context* ctx = nullptr;
    Stream* stream = nullptr; // null: the context's NULL stream
};

std::recursive_mutex gate;
bool initialized = false;
std::vector<std::unique_ptr<Context>> contexts; // one primary context per device
std::vector<size_t> used;                        // bytes allocated per device
size_t memory_per_device = 0;
int fail_device = -1;
long long fail_at = 0;
std::map<uintptr_t, Allocation> allocations;
std::set<Module*> modules;
std::set<Function*> functions;
std::set<Event*> events;
std::set<Blas*> blas_handles;
std::deque<std::string> messages; // texts handed out by cuGetErrorString stay valid
thread_local Context* current = nullptr;
// The explanation of this thread's last failing call, for cuGetErrorString; reset by every call.
thread_local int last_code = -1;
thread_local const char* last_text = nullptr;

const auto epoch = std::chrono::steady_clock::now();
double now_ms() { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - epoch).count(); }

size_t parse_bytes(const char* text, size_t fallback)
{
    if (text == nullptr || *text == '\0') return fallback;
    char* end = nullptr;
    double v = std::strtod(text, &end);
    if (end == text || v <= 0) return fallback;
    switch (*end)
    {
        case 'k': case 'K': v *= 1024.0; break;
        case 'm': case 'M': v *= 1024.0 * 1024.0; break;
        case 'g': case 'G': v *= 1024.0 * 1024.0 * 1024.0; break;
        default: break;
    }
    return (size_t)v;
}

// A failure found while running queued work: sticky for the context, its text kept for cuGetErrorString.
int fail(int code, const std::string& what)
{
    const char* base = "error";
    for (const ErrorText& e : kErrors)
        if (e.code == code) base = e.text;
    messages.push_back(std::string(base) + " (emulated device: " + what + ")");
    last_code = code;
    last_text = messages.back().c_str();
    return code;
}

const Allocation* find(uintptr_t address)
{
    auto it = allocations.upper_bound(address);
    if (it == allocations.begin()) return nullptr;
    --it;
    const Allocation& a = it->second;
    return address < (uintptr_t)a.base + a.size ? &a : nullptr;
}

// The allocation holding [address, address + bytes), or null.
const Allocation* find_range(uintptr_t address, size_t bytes)
{
    const Allocation* a = find(address);
    if (a == nullptr || address + bytes > (uintptr_t)a->base + a->size) return nullptr;
    return a;
}

bool guard_intact(const Allocation& a)
{
    const unsigned char* g = a.base + a.size;
    for (size_t i = 0; i < kGuardBytes; ++i)
        if (g[i] != kGuardByte) return false;
    return true;
}

std::string hex(uintptr_t v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)v);
    return buf;
}

// A failure of queued work: every later call in the context returns it, as after a fault on a GPU.
void set_sticky(Context* ctx, int code)
{
    ctx->sticky = code;
    ctx->sticky_text = last_code == code ? last_text : nullptr;
}

int flush(Stream* s)
{
    Context* ctx = s->ctx;
    while (ctx->sticky == kSuccess && !s->ops.empty())
    {
        std::function<int()> op = std::move(s->ops.front());
        s->ops.pop_front();
        int r = op();
        if (r != kSuccess) set_sticky(ctx, r);
    }
    if (ctx->sticky != kSuccess)
    {
        s->ops.clear();
        for (Stream* other : ctx->streams) other->ops.clear();
    }
    return ctx->sticky;
}

int flush_all(Context* ctx)
{
    for (Stream* s : ctx->streams)
        if (int r = flush(s); r != kSuccess) return r;
    return ctx->sticky;
}

// Deletes and forgets the objects of `set` that `owned` selects.
template <typename T, typename Owned>
void delete_where(std::set<T*>& set, Owned owned)
{
    std::erase_if(set, [&](T* x) {
        if (!owned(x)) return false;
        delete x;
        return true;
    });
}

// The last release of a primary context destroys it with everything it owns (a later retain starts a fresh one,
// without the sticky error of the old).
void destroy(Context* ctx)
{
    flush_all(ctx);
    delete_where(functions, [&](auto* x) { return x->module->ctx == ctx; });
    delete_where(modules, [&](auto* x) { return x->ctx == ctx; });
    delete_where(events, [&](auto* x) { return x->ctx == ctx; });
    delete_where(blas_handles, [&](auto* x) { return x->ctx == ctx; });
    for (Stream* s : ctx->streams) delete s;
    ctx->streams.clear();
    ctx->null_stream.ops.clear();
    for (auto it = allocations.begin(); it != allocations.end();)
    {
        if (it->second.device == ctx->device)
        {
            used[(size_t)ctx->device] -= (it->second.size + 255) / 256 * 256;
            std::free(it->second.base);
            it = allocations.erase(it);
        }
        else ++it;
    }
    ctx->sticky = kSuccess;
    ctx->sticky_text = nullptr;
    ctx->kernels_run = 0;
    if (current == ctx) current = nullptr;
}

// Queues `op` on `s`; work on the NULL stream waits for every stream of the context and runs at once.
int enqueue(Stream* s, std::function<int()> op)
{
    Context* ctx = s->ctx;
    if (ctx->sticky != kSuccess) return ctx->sticky;
    if (s == &ctx->null_stream)
    {
        if (int r = flush_all(ctx); r != kSuccess) return r;
        int r = op();
        if (r != kSuccess) set_sticky(ctx, r);
        return r;
    }
    s->ops.push_back(std::move(op));
    return kSuccess;
}

// The current context, or an error: not initialized, no current context, or a sticky error.
int need_context(Context*& ctx)
{
    if (!initialized) return kNotInitialized;
    ctx = current;
    if (ctx == nullptr) return kInvalidContext;
    return ctx->sticky;
}

// A stream handle of the current context (0: its NULL stream).
int resolve_stream(Context* ctx, void* handle, Stream*& s)
{
    if (handle == nullptr)
    {
        s = &ctx->null_stream;
        return kSuccess;
    }
    s = static_cast<Stream*>(handle);
    return ctx->streams.count(s) ? kSuccess : kInvalidHandle;
}

// The current context and a stream of it, for calls that queue work.
int on_stream(void* handle, Context*& ctx, Stream*& s)
{
    if (int r = need_context(ctx); r != kSuccess) return r;
    return resolve_stream(ctx, handle, s);
}

bool is_pinned(uintptr_t address, size_t bytes)
{
    const Allocation* a = find_range(address, bytes);
    return a != nullptr && a->device < 0;
}

int check_device_range(uintptr_t address, size_t bytes)
{
    const Allocation* a = find_range(address, bytes);
    return a != nullptr && a->device >= 0 ? kSuccess : kInvalidValue;
}

size_t slot_bytes(char kind) { return kind == 'p' || kind == 'l' || kind == 'd' ? 8 : 4; }

// ---- cuBLAS: column-major GEMMs with f32/f16/bf16 inputs and output, f32 compute (accumulated here in double).

float load(const unsigned char* base, int type, size_t index)
{
    if (type == 0) { float f; std::memcpy(&f, base + index * 4, 4); return f; }
    uint16_t h;
    std::memcpy(&h, base + index * 2, 2);
    return type == 2 ? longdep_emu::f16_bits_to_f32(h) : longdep_emu::bf16_bits_to_f32(h);
}

// cuBLAS's conversion of the f32 result to an f16/bf16 C: round to nearest even.
void store(unsigned char* base, int type, size_t index, float value)
{
    if (type == 0) { std::memcpy(base + index * 4, &value, 4); return; }
    const uint16_t h = type == 2 ? longdep_emu::f32_to_f16_bits(value) : longdep_emu::f32_to_bf16_bits(value);
    std::memcpy(base + index * 2, &h, 2);
}

size_t type_bytes(int type) { return type == 0 ? 4 : 2; }
bool supported_input(int type) { return type == 0 || type == 2 || type == 14; }

struct GemmArgs
{
    int transA, transB, m, n, k;
    float alpha, beta;
    uintptr_t a, b, c;
    int aType, bType, cType, lda, ldb, ldc;
    long long strideA, strideB, strideC;
    int batch;
};

// Elements spanned by an op(X) operand stored column-major with `rows` x `cols` and leading dimension `ld`.
size_t extent(int rows, int cols, int ld) { return rows == 0 || cols == 0 ? 0 : (size_t)(cols - 1) * ld + rows; }

int run_gemm(const GemmArgs& g, int device)
{
    const int aRows = g.transA ? g.k : g.m, aCols = g.transA ? g.m : g.k;
    const int bRows = g.transB ? g.n : g.k, bCols = g.transB ? g.k : g.n;
    std::vector<float> a((size_t)g.m * g.k), b((size_t)g.k * g.n);
    for (int batch = 0; batch < g.batch; ++batch)
    {
        const uintptr_t pa = g.a + (uintptr_t)(batch * g.strideA * (long long)type_bytes(g.aType));
        const uintptr_t pb = g.b + (uintptr_t)(batch * g.strideB * (long long)type_bytes(g.bType));
        const uintptr_t pc = g.c + (uintptr_t)(batch * g.strideC * (long long)type_bytes(g.cType));
        const struct { uintptr_t p; size_t bytes; const char* what; } ranges[] = {
            {pa, extent(aRows, aCols, g.lda) * type_bytes(g.aType), "A"},
            {pb, extent(bRows, bCols, g.ldb) * type_bytes(g.bType), "B"},
            {pc, extent(g.m, g.n, g.ldc) * type_bytes(g.cType), "C"},
        };
        for (const auto& r : ranges)
        {
            const Allocation* al = r.bytes == 0 ? nullptr : find_range(r.p, r.bytes);
            if (r.bytes != 0 && (al == nullptr || al->device != device))
                return fail(kIllegalAddress, std::string("GEMM batch ") + std::to_string(batch) + ": " + r.what + " (" + hex(r.p) +
                                                 ", " + std::to_string(r.bytes) + " bytes) is not inside one allocation of device " +
                                                 std::to_string(device));
        }
        const auto* A = reinterpret_cast<const unsigned char*>(pa);
        const auto* B = reinterpret_cast<const unsigned char*>(pb);
        auto* C = reinterpret_cast<unsigned char*>(pc);
        // op(A) row-major (m x k) and op(B) column-major (k x n): every output is a contiguous dot product.
        for (int i = 0; i < g.m; ++i)
            for (int p = 0; p < g.k; ++p)
                a[(size_t)i * g.k + p] = load(A, g.aType, g.transA ? (size_t)p + (size_t)i * g.lda : (size_t)i + (size_t)p * g.lda);
        for (int j = 0; j < g.n; ++j)
            for (int p = 0; p < g.k; ++p)
                b[(size_t)j * g.k + p] = load(B, g.bType, g.transB ? (size_t)j + (size_t)p * g.ldb : (size_t)p + (size_t)j * g.ldb);
        for (int j = 0; j < g.n; ++j)
            for (int i = 0; i < g.m; ++i)
            {
                const float* x = &a[(size_t)i * g.k];
                const float* y = &b[(size_t)j * g.k];
                double sum = 0;
                for (int p = 0; p < g.k; ++p) sum += (double)x[p] * y[p];
                const size_t out = (size_t)i + (size_t)j * g.ldc;
                // beta == 0: C is not read (cuBLAS's rule), so NaN in fresh memory does not leak in.
                store(C, g.cType, out, g.beta == 0.0f ? (float)(g.alpha * sum)
                                                      : (float)(g.alpha * sum + (double)g.beta * load(C, g.cType, out)));
            }
        for (const auto& r : ranges)
            if (r.bytes != 0 && !guard_intact(*find(r.p)))
                return fail(kIllegalAddress, std::string("GEMM wrote past the end of its ") + r.what + " allocation");
    }
    return kSuccess;
}

int gemm(void* handle, const GemmArgs& g)
{
    std::lock_guard lock(gate);
    last_code = -1;
    auto* h = static_cast<Blas*>(handle);
    if (!blas_handles.count(h)) return 1; // CUBLAS_STATUS_NOT_INITIALIZED
    if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0 || (g.transA != 0 && g.transA != 1) || (g.transB != 0 && g.transB != 1))
        return 7; // CUBLAS_STATUS_INVALID_VALUE
    if (g.lda < std::max(1, g.transA ? g.k : g.m) || g.ldb < std::max(1, g.transB ? g.n : g.k) || g.ldc < std::max(1, g.m))
        return 7;
    if (!supported_input(g.aType) || !supported_input(g.bType) || !supported_input(g.cType)) return 15; // CUBLAS_STATUS_NOT_SUPPORTED
    if (g.m == 0 || g.n == 0 || g.batch == 0) return 0;
    Context* ctx = h->ctx;
    if (ctx->sticky != kSuccess) return 13; // CUBLAS_STATUS_EXECUTION_FAILED
    Stream* s = h->stream != nullptr ? h->stream : &ctx->null_stream;
    const int device = ctx->device;
    int r = enqueue(s, [g, device] { return run_gemm(g, device); });
    return r == kSuccess ? 0 : 13;
}

} // namespace

// Every entry point but cuGetErrorName/String holds the lock and forgets the previous call's explanation.
#define ENTER                         \
    std::lock_guard enter_lock(gate); \
    last_code = -1

extern "C" {

// ---- initialization, errors, devices

int cuInit(unsigned flags)
{
    ENTER;
    if (flags != 0) return kInvalidValue;
    if (initialized) return kSuccess;
    int count = 1;
    if (const char* d = std::getenv("LONGDEP_EMU_DEVICES"); d != nullptr && *d != '\0') count = std::atoi(d);
    if (count < 0 || count > 64) count = 1;
    memory_per_device = parse_bytes(std::getenv("LONGDEP_EMU_MEMORY"), (size_t)80 << 30);
    if (const char* f = std::getenv("LONGDEP_EMU_FAIL"); f != nullptr && std::strchr(f, ':') != nullptr)
    {
        fail_device = std::atoi(f);
        fail_at = std::atoll(std::strchr(f, ':') + 1);
    }
    for (int i = 0; i < count; ++i)
    {
        auto ctx = std::make_unique<Context>();
        ctx->device = i;
        ctx->null_stream.ctx = ctx.get();
        contexts.push_back(std::move(ctx));
    }
    used.assign((size_t)count, 0);
    initialized = true;
    return kSuccess;
}

int cuDriverGetVersion(int* version)
{
    if (version == nullptr) return kInvalidValue;
    *version = 13000;
    return kSuccess;
}

int cuGetErrorName(int error, const char** text)
{
    if (text == nullptr) return kInvalidValue;
    for (const ErrorText& e : kErrors)
        if (e.code == error) { *text = e.name; return kSuccess; }
    *text = nullptr;
    return kInvalidValue;
}

int cuGetErrorString(int error, const char** text)
{
    std::lock_guard lock(gate);
    if (text == nullptr) return kInvalidValue;
    if (error == last_code && last_text != nullptr) { *text = last_text; return kSuccess; }
    for (auto& c : contexts)
        if (c->sticky == error && c->sticky_text != nullptr) { *text = c->sticky_text; return kSuccess; }
    for (const ErrorText& e : kErrors)
        if (e.code == error) { *text = e.text; return kSuccess; }
    *text = nullptr;
    return kInvalidValue;
}

int cuDeviceGetCount(int* count)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    if (count == nullptr) return kInvalidValue;
    *count = (int)contexts.size();
    return kSuccess;
}

int cuDeviceGet(int* device, int ordinal)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    if (device == nullptr) return kInvalidValue;
    if (ordinal < 0 || ordinal >= (int)contexts.size()) return kInvalidDevice;
    *device = ordinal;
    return kSuccess;
}

int cuDeviceGetName(char* name, int length, int device)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    if (device < 0 || device >= (int)contexts.size()) return kInvalidDevice;
    if (name == nullptr || length <= 0) return kInvalidValue;
    std::snprintf(name, (size_t)length, "LongDep emulated GPU %d (kernel emulator on the CPU, H100 limits)", device);
    return kSuccess;
}

int cuDeviceGetAttribute(int* value, int attribute, int device)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    if (device < 0 || device >= (int)contexts.size()) return kInvalidDevice;
    if (value == nullptr) return kInvalidValue;
    switch (attribute)
    {
        case 1: *value = 1024; return kSuccess;             // max threads per block
        case 8: *value = kDefaultSharedLimit; return kSuccess; // shared memory per block
        case 16: *value = kSmCount; return kSuccess;
        case 75: *value = 9; return kSuccess;
        case 76: *value = 0; return kSuccess;
        case 97: *value = kMaxSharedOptin; return kSuccess;
        default: return kInvalidValue; // the host reads no other attribute: asking is a change to look at
    }
}

int cuDeviceTotalMem_v2(size_t* bytes, int device)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    if (device < 0 || device >= (int)contexts.size()) return kInvalidDevice;
    if (bytes == nullptr) return kInvalidValue;
    *bytes = memory_per_device;
    return kSuccess;
}

// ---- contexts

int cuDevicePrimaryCtxRetain(void** context, int device)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    if (device < 0 || device >= (int)contexts.size()) return kInvalidDevice;
    if (context == nullptr) return kInvalidValue;
    contexts[(size_t)device]->retained++;
    *context = contexts[(size_t)device].get();
    return kSuccess;
}

int cuDevicePrimaryCtxRelease_v2(int device)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    if (device < 0 || device >= (int)contexts.size()) return kInvalidDevice;
    Context* ctx = contexts[(size_t)device].get();
    if (ctx->retained <= 0) return kInvalidContext;
    if (--ctx->retained == 0) destroy(ctx);
    return kSuccess;
}

int cuCtxSetCurrent(void* context)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    if (context == nullptr) { current = nullptr; return kSuccess; }
    for (auto& c : contexts)
        if (c.get() == context)
        {
            if (c->retained <= 0) return kInvalidContext;
            current = c.get();
            return kSuccess;
        }
    return kInvalidContext;
}

int cuCtxSynchronize()
{
    ENTER;
    Context* ctx;
    if (int r = need_context(ctx); r != kSuccess) return r;
    return flush_all(ctx);
}

// ---- memory

int cuMemAlloc_v2(uintptr_t* pointer, size_t bytes)
{
    ENTER;
    Context* ctx;
    if (int r = need_context(ctx); r != kSuccess) return r;
    if (pointer == nullptr || bytes == 0) return kInvalidValue;
    const size_t rounded = (bytes + 255) / 256 * 256;
    if (used[(size_t)ctx->device] + rounded > memory_per_device) return kOutOfMemory;
    auto* base = static_cast<unsigned char*>(std::aligned_alloc(256, (rounded + kGuardBytes + 255) / 256 * 256));
    if (base == nullptr) return kOutOfMemory;
    std::memset(base, 0xFF, bytes);
    std::memset(base + bytes, kGuardByte, kGuardBytes);
    allocations[(uintptr_t)base] = Allocation{base, bytes, ctx->device};
    used[(size_t)ctx->device] += rounded;
    *pointer = (uintptr_t)base;
    return kSuccess;
}

int cuMemFree_v2(uintptr_t pointer)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    if (pointer == 0) return kSuccess;
    auto it = allocations.find(pointer);
    if (it == allocations.end() || it->second.device < 0) return kInvalidValue;
    // The driver waits for the device before memory goes back to it.
    Context* owner = contexts[(size_t)it->second.device].get();
    flush_all(owner);
    used[(size_t)it->second.device] -= (it->second.size + 255) / 256 * 256;
    std::free(it->second.base);
    allocations.erase(it);
    return kSuccess;
}

int cuMemAllocHost_v2(void** pointer, size_t bytes)
{
    ENTER;
    Context* ctx;
    if (int r = need_context(ctx); r != kSuccess) return r;
    if (pointer == nullptr || bytes == 0) return kInvalidValue;
    auto* base = static_cast<unsigned char*>(std::aligned_alloc(256, (bytes + kGuardBytes + 255) / 256 * 256));
    if (base == nullptr) return kOutOfMemory;
    std::memset(base + bytes, kGuardByte, kGuardBytes);
    allocations[(uintptr_t)base] = Allocation{base, bytes, -1};
    *pointer = base;
    return kSuccess;
}

int cuMemFreeHost(void* pointer)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    auto it = allocations.find((uintptr_t)pointer);
    if (it == allocations.end() || it->second.device >= 0) return kInvalidValue;
    for (auto& c : contexts) flush_all(c.get()); // queued copies may still read or write it
    std::free(it->second.base);
    allocations.erase(it);
    return kSuccess;
}

int cuMemGetInfo_v2(size_t* free, size_t* total)
{
    ENTER;
    Context* ctx;
    if (int r = need_context(ctx); r != kSuccess) return r;
    if (free == nullptr || total == nullptr) return kInvalidValue;
    *total = memory_per_device;
    *free = memory_per_device - used[(size_t)ctx->device];
    return kSuccess;
}

int cuMemcpyHtoDAsync_v2(uintptr_t destination, const void* source, size_t bytes, void* stream)
{
    ENTER;
    Context* ctx;
    Stream* s;
    if (int r = on_stream(stream, ctx, s); r != kSuccess) return r;
    if (bytes == 0) return kSuccess;
    if (source == nullptr || check_device_range(destination, bytes) != kSuccess) return kInvalidValue;
    if (is_pinned((uintptr_t)source, bytes))
        return enqueue(s, [destination, source, bytes] {
            std::memcpy(reinterpret_cast<void*>(destination), source, bytes);
            return (int)kSuccess;
        });
    // Pageable memory: the driver stages it before returning, so the caller may reuse it at once.
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(source),
                                                               static_cast<const unsigned char*>(source) + bytes);
    return enqueue(s, [destination, staged] {
        std::memcpy(reinterpret_cast<void*>(destination), staged->data(), staged->size());
        return (int)kSuccess;
    });
}

int cuMemcpyDtoHAsync_v2(void* destination, uintptr_t source, size_t bytes, void* stream)
{
    ENTER;
    Context* ctx;
    Stream* s;
    if (int r = on_stream(stream, ctx, s); r != kSuccess) return r;
    if (bytes == 0) return kSuccess;
    if (destination == nullptr || check_device_range(source, bytes) != kSuccess) return kInvalidValue;
    auto copy = [destination, source, bytes] {
        std::memcpy(destination, reinterpret_cast<const void*>(source), bytes);
        return (int)kSuccess;
    };
    if (is_pinned((uintptr_t)destination, bytes)) return enqueue(s, copy);
    // Pageable memory: the call returns once the copy (and the stream's earlier work) is done.
    if (int r = enqueue(s, copy); r != kSuccess) return r;
    return s == &ctx->null_stream ? kSuccess : flush(s);
}

int cuMemcpyDtoDAsync_v2(uintptr_t destination, uintptr_t source, size_t bytes, void* stream)
{
    ENTER;
    Context* ctx;
    Stream* s;
    if (int r = on_stream(stream, ctx, s); r != kSuccess) return r;
    if (bytes == 0) return kSuccess;
    if (check_device_range(destination, bytes) != kSuccess || check_device_range(source, bytes) != kSuccess) return kInvalidValue;
    return enqueue(s, [destination, source, bytes] {
        std::memmove(reinterpret_cast<void*>(destination), reinterpret_cast<const void*>(source), bytes);
        return (int)kSuccess;
    });
}

int cuMemsetD8Async(uintptr_t destination, unsigned char value, size_t count, void* stream)
{
    ENTER;
    Context* ctx;
    Stream* s;
    if (int r = on_stream(stream, ctx, s); r != kSuccess) return r;
    if (count == 0) return kSuccess;
    if (check_device_range(destination, count) != kSuccess) return kInvalidValue;
    return enqueue(s, [destination, value, count] {
        std::memset(reinterpret_cast<void*>(destination), value, count);
        return (int)kSuccess;
    });
}

int cuMemsetD32Async(uintptr_t destination, unsigned value, size_t count, void* stream)
{
    ENTER;
    Context* ctx;
    Stream* s;
    if (int r = on_stream(stream, ctx, s); r != kSuccess) return r;
    if (count == 0) return kSuccess;
    if (destination % 4 != 0 || check_device_range(destination, count * 4) != kSuccess) return kInvalidValue;
    return enqueue(s, [destination, value, count] {
        auto* p = reinterpret_cast<unsigned*>(destination);
        std::fill(p, p + count, value);
        return (int)kSuccess;
    });
}

// ---- modules and kernels

int cuModuleLoadData(void** module, const void* image)
{
    ENTER;
    Context* ctx;
    if (int r = need_context(ctx); r != kSuccess) return r;
    if (module == nullptr || image == nullptr) return kInvalidValue;
    const auto* bytes = static_cast<const unsigned char*>(image);
    size_t length = 0;
    uint32_t magic;
    std::memcpy(&magic, bytes, 4);
    if (magic == 0xBA55ED50u) // fatbin: magic, version (2), header size (2), payload size (8)
    {
        uint16_t header;
        uint64_t payload;
        std::memcpy(&header, bytes + 6, 2);
        std::memcpy(&payload, bytes + 8, 8);
        length = header + payload;
    }
    else if (std::memcmp(bytes, "\x7F" "ELF", 4) == 0) // cubin: up to the end of the section headers
    {
        uint64_t shoff;
        uint16_t shentsize, shnum;
        std::memcpy(&shoff, bytes + 0x28, 8);
        std::memcpy(&shentsize, bytes + 0x3A, 2);
        std::memcpy(&shnum, bytes + 0x3C, 2);
        length = shoff + (size_t)shentsize * shnum;
    }
    else if (bytes[0] == '/' || bytes[0] == '.' || bytes[0] == '\n') // PTX text
        length = std::strlen(static_cast<const char*>(image));
    else if (std::memcmp(bytes, kEmulatorImageMagic, sizeof kEmulatorImageMagic) == 0)
    {
        // The kernel emulator's own image (build-emulator.sh, for machines without nvcc): the magic, then each kernel
        // name NUL-terminated, then an empty name.
        length = sizeof kEmulatorImageMagic;
        while (bytes[length] != 0) length += std::strlen(reinterpret_cast<const char*>(bytes + length)) + 1;
        length++;
    }
    else
        return fail(kInvalidImage, "the image is neither a fatbin, a cubin, PTX nor the kernel emulator's image");
    auto* m = new Module{ctx, std::vector<unsigned char>(bytes, bytes + length)};
    modules.insert(m);
    *module = m;
    return kSuccess;
}

int cuModuleUnload(void* module)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    auto* m = static_cast<Module*>(module);
    if (!modules.count(m)) return kInvalidHandle;
    flush_all(m->ctx);
    delete_where(functions, [&](auto* x) { return x->module == m; });
    modules.erase(m);
    delete m;
    return kSuccess;
}

int cuModuleGetFunction(void** function, void* module, const char* name)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    auto* m = static_cast<Module*>(module);
    if (function == nullptr || name == nullptr) return kInvalidValue;
    if (!modules.count(m)) return kInvalidHandle;
    // The kernel must be in the image (its name, NUL-delimited, in a symbol table) and in the emulator.
    std::string needle = std::string(1, '\0') + name + std::string(1, '\0');
    bool inImage = std::search(m->image.begin(), m->image.end(), needle.begin(), needle.end()) != m->image.end();
    const char* signature = longdep_emu_kernel_signature(name);
    if (!inImage || signature == nullptr)
        return fail(kNotFound, std::string("kernel ") + name + (inImage ? " is not in the kernel emulator" : " is not in the loaded image"));
    auto* f = new Function{m, name, signature};
    functions.insert(f);
    *function = f;
    return kSuccess;
}

int cuFuncGetAttribute(int* value, int attribute, void* function)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    auto* f = static_cast<Function*>(function);
    if (value == nullptr) return kInvalidValue;
    if (!functions.count(f)) return kInvalidHandle;
    switch (attribute)
    {
        case 0: *value = 1024; return kSuccess; // max threads per block
        case 8: *value = f->max_dynamic_shared; return kSuccess;
        default: return kInvalidValue;
    }
}

int cuFuncSetAttribute(void* function, int attribute, int value)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    auto* f = static_cast<Function*>(function);
    if (!functions.count(f)) return kInvalidHandle;
    if (attribute != 8 || value < 0 || value > kMaxSharedOptin) return kInvalidValue;
    f->max_dynamic_shared = value;
    return kSuccess;
}

int cuLaunchKernel(void* function, unsigned gridX, unsigned gridY, unsigned gridZ, unsigned blockX, unsigned blockY,
                   unsigned blockZ, unsigned sharedBytes, void* stream, void** parameters, void** extra)
{
    ENTER;
    Context* ctx;
    Stream* s;
    if (int r = need_context(ctx); r != kSuccess) return r;
    auto* f = static_cast<Function*>(function);
    if (!functions.count(f)) return kInvalidHandle;
    if (f->module->ctx != ctx) return kInvalidHandle; // a function of another context
    if (int r = resolve_stream(ctx, stream, s); r != kSuccess) return r;
    if (extra != nullptr) return kInvalidValue;
    const unsigned long long threads = (unsigned long long)blockX * blockY * blockZ;
    if (gridX == 0 || gridY == 0 || gridZ == 0 || gridY > 65535 || gridZ > 65535 || gridX > 0x7FFFFFFFu || threads == 0 ||
        threads > 1024 || blockZ > 64)
        return kInvalidValue;
    if ((int)sharedBytes > std::max(kDefaultSharedLimit, f->max_dynamic_shared))
        return fail(kInvalidValue, "kernel " + f->name + " asks " + std::to_string(sharedBytes) +
                                       " bytes of dynamic shared memory; cuFuncSetAttribute allowed " + std::to_string(f->max_dynamic_shared));
    const std::string& sig = f->signature;
    if (!sig.empty() && parameters == nullptr) return kInvalidValue;
    // The driver copies the argument values at the call: the caller may reuse its buffer at once.
    auto values = std::make_shared<std::vector<uint64_t>>(sig.size(), 0);
    for (size_t i = 0; i < sig.size(); ++i) std::memcpy(&(*values)[i], parameters[i], slot_bytes(sig[i]));
    const std::string name = f->name;
    const int device = ctx->device;
    const unsigned grid[3] = {gridX, gridY, gridZ}, block[3] = {blockX, blockY, blockZ};
    Context* owner = ctx;
    return enqueue(s, [=]() -> int {
        if (++owner->kernels_run == fail_at && device == fail_device)
            return fail(kLaunchFailed, "LONGDEP_EMU_FAIL: kernel " + name + " is launch " + std::to_string(fail_at) +
                                           " on device " + std::to_string(device));
        std::vector<const Allocation*> touched;
        for (size_t i = 0; i < sig.size(); ++i)
        {
            if (sig[i] != 'p' || (*values)[i] == 0) continue;
            const Allocation* a = find((uintptr_t)(*values)[i]);
            if (a == nullptr || a->device != device)
                return fail(kIllegalAddress, "kernel " + name + " argument " + std::to_string(i) + " (" + hex((uintptr_t)(*values)[i]) +
                                                 ") is not in device memory of device " + std::to_string(device));
            touched.push_back(a);
        }
        std::vector<void*> args(sig.size());
        for (size_t i = 0; i < sig.size(); ++i) args[i] = &(*values)[i];
        char error[512] = {0};
        if (longdep_emu_launch(name.c_str(), grid, block, (int)sharedBytes, args.data(), error, (int)sizeof error) != 0)
            return fail(kLaunchFailed, error);
        for (size_t i = 0; i < touched.size(); ++i)
            if (!guard_intact(*touched[i]))
                return fail(kIllegalAddress, "kernel " + name + " wrote past the end of a " + std::to_string(touched[i]->size) +
                                                 "-byte allocation it was given");
        return (int)kSuccess;
    });
}

// ---- streams and events

int cuStreamCreate(void** stream, unsigned flags)
{
    ENTER;
    Context* ctx;
    if (int r = need_context(ctx); r != kSuccess) return r;
    if (stream == nullptr || flags > 1) return kInvalidValue;
    auto* s = new Stream{ctx, {}};
    ctx->streams.insert(s);
    *stream = s;
    return kSuccess;
}

int cuStreamDestroy_v2(void* stream)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    for (auto& c : contexts)
    {
        auto* s = static_cast<Stream*>(stream);
        if (c->streams.count(s))
        {
            flush(s); // queued work still completes
            for (Event* e : events)
                if (e->stream == s) e->stream = nullptr;
            c->streams.erase(s);
            delete s;
            return kSuccess;
        }
    }
    return kInvalidHandle;
}

int cuStreamSynchronize(void* stream)
{
    ENTER;
    Context* ctx;
    Stream* s;
    if (!initialized) return kNotInitialized;
    ctx = current;
    if (ctx == nullptr) return kInvalidContext;
    if (int r = resolve_stream(ctx, stream, s); r != kSuccess) return r;
    return s == &ctx->null_stream ? flush_all(ctx) : flush(s);
}

int cuEventCreate(void** event, unsigned flags)
{
    ENTER;
    Context* ctx;
    if (int r = need_context(ctx); r != kSuccess) return r;
    (void)flags;
    if (event == nullptr) return kInvalidValue;
    auto* e = new Event{ctx};
    events.insert(e);
    *event = e;
    return kSuccess;
}

int cuEventDestroy_v2(void* event)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    auto* e = static_cast<Event*>(event);
    if (!events.count(e)) return kInvalidHandle;
    if (e->stream != nullptr) flush(e->stream); // its record op points at it
    events.erase(e);
    delete e;
    return kSuccess;
}

int cuEventRecord(void* event, void* stream)
{
    ENTER;
    Context* ctx;
    Stream* s;
    if (int r = need_context(ctx); r != kSuccess) return r;
    auto* e = static_cast<Event*>(event);
    if (!events.count(e) || e->ctx != ctx) return kInvalidHandle;
    if (int r = resolve_stream(ctx, stream, s); r != kSuccess) return r;
    e->recorded = true;
    e->done = false;
    e->stream = s == &ctx->null_stream ? nullptr : s;
    return enqueue(s, [e] {
        e->ms = now_ms();
        e->done = true;
        return (int)kSuccess;
    });
}

int cuEventSynchronize(void* event)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    auto* e = static_cast<Event*>(event);
    if (!events.count(e)) return kInvalidHandle;
    if (e->ctx->sticky != kSuccess) return e->ctx->sticky;
    if (!e->recorded || e->done) return kSuccess;
    return e->stream != nullptr ? flush(e->stream) : flush_all(e->ctx);
}

int cuEventElapsedTime(float* milliseconds, void* start, void* end)
{
    ENTER;
    if (!initialized) return kNotInitialized;
    auto* a = static_cast<Event*>(start);
    auto* b = static_cast<Event*>(end);
    if (milliseconds == nullptr) return kInvalidValue;
    if (!events.count(a) || !events.count(b) || !a->recorded || !b->recorded) return kInvalidHandle;
    if (!a->done || !b->done) return kNotReady;
    *milliseconds = (float)(b->ms - a->ms);
    return kSuccess;
}

// ---- cuBLAS (libcublas.so.12 is a link to this file)

int cublasCreate_v2(void** handle)
{
    ENTER;
    if (handle == nullptr) return 7;
    if (!initialized || current == nullptr) return 1; // CUBLAS_STATUS_NOT_INITIALIZED: no current context
    auto* h = new Blas{current, nullptr};
    blas_handles.insert(h);
    *handle = h;
    return 0;
}

int cublasDestroy_v2(void* handle)
{
    ENTER;
    auto* h = static_cast<Blas*>(handle);
    if (!blas_handles.count(h)) return 1;
    blas_handles.erase(h);
    delete h;
    return 0;
}

int cublasSetStream_v2(void* handle, void* stream)
{
    ENTER;
    auto* h = static_cast<Blas*>(handle);
    if (!blas_handles.count(h)) return 1;
    Stream* s;
    if (resolve_stream(h->ctx, stream, s) != kSuccess) return 7;
    h->stream = stream == nullptr ? nullptr : s;
    return 0;
}

int cublasGetVersion_v2(void* handle, int* version)
{
    ENTER;
    if (!blas_handles.count(static_cast<Blas*>(handle))) return 1;
    if (version == nullptr) return 7;
    *version = 130000;
    return 0;
}

int cublasSetMathMode(void* handle, int mode)
{
    ENTER;
    if (!blas_handles.count(static_cast<Blas*>(handle))) return 1;
    return mode == 0 ? 0 : 15; // only CUBLAS_DEFAULT_MATH is emulated
}

const char* cublasGetStatusString(int status)
{
    switch (status)
    {
        case 0: return "CUBLAS_STATUS_SUCCESS";
        case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case 7: return "CUBLAS_STATUS_INVALID_VALUE";
        case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
        default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

int cublasGemmEx(void* handle, int transA, int transB, int m, int n, int k, const float* alpha, uintptr_t a, int aType,
                 int lda, uintptr_t b, int bType, int ldb, const float* beta, uintptr_t c, int cType, int ldc,
                 int computeType, int algorithm)
{
    (void)algorithm;
    if (alpha == nullptr || beta == nullptr) return 7;
    if (computeType != 68) return 15; // CUBLAS_COMPUTE_32F: what the host asks
    return gemm(handle, GemmArgs{transA, transB, m, n, k, *alpha, *beta, a, b, c, aType, bType, cType, lda, ldb, ldc, 0, 0, 0, 1});
}

int cublasGemmStridedBatchedEx(void* handle, int transA, int transB, int m, int n, int k, const float* alpha, uintptr_t a,
                               int aType, int lda, long long strideA, uintptr_t b, int bType, int ldb, long long strideB,
                               const float* beta, uintptr_t c, int cType, int ldc, long long strideC, int batchCount,
                               int computeType, int algorithm)
{
    (void)algorithm;
    if (alpha == nullptr || beta == nullptr) return 7;
    if (computeType != 68) return 15;
    return gemm(handle, GemmArgs{transA, transB, m, n, k, *alpha, *beta, a, b, c, aType, bType, cType, lda, ldb, ldc, strideA,
                                 strideB, strideC, batchCount});
}

} // extern "C"
