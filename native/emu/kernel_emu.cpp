// The LongDep kernels compiled as host C++ (kernels/*.cu with LONGDEP_EMULATE, see cuda_emu.h) and a launcher
// that runs them on the CPU: liblongdep_kernel_emu.so. The tests load it through LongDep.Cuda's KernelEmulator so
// the kernels' own source (indexing, tiling, shared-memory staging, mma fragment layouts, barriers) is checked
// against the C# twins on machines without a GPU.
//
// Each block runs as blockDim cooperative fibers on the calling OS thread. A fiber runs until it reaches
// __syncthreads, a warp shuffle or an mma, where it waits for the block or its warp; the last to arrive releases
// the others. What the GPU would leave undefined is an error here: lanes of one warp in different warp-wide calls,
// a warp-wide call that waits for lanes that have returned, threads stuck at different barriers. Dynamic shared
// memory is filled with 0xFF (NaN) at each block start, so reading what no thread wrote shows in the results.
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#define LONGDEP_EMULATE 1
#include "../longdep_kernels.cu"

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

#if defined(__x86_64__)
// Fiber switch without a system call (ucontext's swapcontext saves the signal mask with one): pushes the
// callee-saved registers and the SSE/x87 control words on the current stack, stores its pointer in *from, and
// continues on `to`, a stack left by an earlier switch or prepared by new_fiber_stack.
extern "C" void longdep_emu_switch(void** from, void* to);
asm(R"(
    .text
    .globl longdep_emu_switch
    .hidden longdep_emu_switch
    .type longdep_emu_switch,@function
longdep_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size longdep_emu_switch, .-longdep_emu_switch
)");
#define LONGDEP_EMU_FAST_SWITCH 1
#endif

namespace longdep_emu {

thread_local unsigned char* dynamic_smem = nullptr;

namespace {

constexpr size_t kStackBytes = 256 * 1024;
constexpr int kWordsPerLane = 16;

enum class State { Runnable, AtWarp, AtBlock, Done };

struct AsyncCopy
{
    void* dst;
    unsigned char bytes[16];
};

struct Fiber
{
    std::vector<AsyncCopy> open;                 // cp.async issued since the last commit
    std::vector<std::vector<AsyncCopy>> groups;  // committed, oldest first
    ucontext_t context; // without the fast switch
    void* sp = nullptr; // with it: the saved stack pointer
    State state = State::Runnable;
    uint3 tid{};
    int phase = 0; // which half of the warp's exchange buffer the next warp-wide call uses
};

struct Warp
{
    int arrived = 0;
    WarpOp op = WarpOp::Shuffle;
    uint32_t words[2][32 * kWordsPerLane];
};

struct Launch
{
    void (*entry)(void**) = nullptr;
    void** args = nullptr;
    int threads = 0;
    int sharedBytes = 0;
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    ucontext_t scheduler;
    void* schedulerSp = nullptr;
    int current = 0;
    int blockArrived = 0;
    int exited = 0;
    bool failed = false;
    std::string error;
};

thread_local Launch* active = nullptr;
thread_local std::vector<char*> stacks; // reused by every launch on this OS thread

const char* op_name(WarpOp op)
{
    return op == WarpOp::Mma ? "mma.sync" : op == WarpOp::Ldmatrix ? "ldmatrix" : "a warp shuffle";
}

std::string where(const Launch& launch, int thread)
{
    const Fiber& f = launch.fibers[thread];
    char text[160];
    std::snprintf(text, sizeof text, "block (%u,%u,%u) thread (%u,%u,%u)", blockIdx.x, blockIdx.y, blockIdx.z, f.tid.x,
                  f.tid.y, f.tid.z);
    return text;
}

void yield_to_scheduler()
{
    Launch& launch = *active;
#ifdef LONGDEP_EMU_FAST_SWITCH
    longdep_emu_switch(&launch.fibers[launch.current].sp, launch.schedulerSp);
#else
    swapcontext(&launch.fibers[launch.current].context, &launch.scheduler);
#endif
}

void release_block_if_complete(Launch& launch)
{
    if (launch.blockArrived == 0 || launch.blockArrived + launch.exited < launch.threads) return;
    for (Fiber& f : launch.fibers)
        if (f.state == State::AtBlock) f.state = State::Runnable;
    launch.blockArrived = 0;
}

void fiber_main()
{
    Launch& launch = *active;
    launch.entry(launch.args);
    {
        const Fiber& f = launch.fibers[launch.current];
        bool pending = !f.open.empty();
        for (const auto& group : f.groups) pending = pending || !group.empty();
        if (pending) fail("thread returned with cp.async copies never waited for");
    }
    launch.fibers[launch.current].state = State::Done;
    ++launch.exited;
    release_block_if_complete(launch);
#ifdef LONGDEP_EMU_FAST_SWITCH
    yield_to_scheduler(); // never resumed: the fiber is done
    std::abort();
#endif
    // Returning resumes the scheduler (uc_link).
}

#ifdef LONGDEP_EMU_FAST_SWITCH
// A fresh fiber's stack as longdep_emu_switch leaves it: control words, six registers, then the return address
// fiber_main, placed so that fiber_main starts with the stack alignment of a called function.
void* new_fiber_stack(char* stack, size_t bytes)
{
    uintptr_t top = ((uintptr_t)(stack + bytes) & ~(uintptr_t)15) - 16;
    void** sp = reinterpret_cast<void**>(top); // 16-byte aligned: the return address slot
    *sp = reinterpret_cast<void*>(&fiber_main);
    sp -= 6;                                   // rbp, rbx, r12..r15 = 0
    for (int i = 0; i < 6; ++i) sp[i] = nullptr;
    sp -= 1;
    const uint32_t mxcsr = 0x1f80u;            // defaults: all exceptions masked, round to nearest
    const uint16_t fpucw = 0x037fu;
    std::memcpy(sp, &mxcsr, 4);
    std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpucw, 2);
    return sp;
}
#endif

std::string describe_deadlock(const Launch& launch)
{
    int atBlock = 0, atWarp = 0, done = 0;
    int firstWarpWaiter = -1;
    for (int i = 0; i < launch.threads; ++i)
    {
        switch (launch.fibers[i].state)
        {
        case State::AtBlock: ++atBlock; break;
        case State::AtWarp:
            ++atWarp;
            if (firstWarpWaiter < 0) firstWarpWaiter = i;
            break;
        case State::Done: ++done; break;
        default: break;
        }
    }
    std::string text = "deadlock: " + std::to_string(atBlock) + " threads wait at __syncthreads, " +
                       std::to_string(atWarp) + " at a warp-wide call, " + std::to_string(done) + " have returned";
    if (firstWarpWaiter >= 0)
        text += " (first warp-wide waiter: " + where(launch, firstWarpWaiter) + ", in " +
                op_name(launch.warps[firstWarpWaiter / 32].op) + ")";
    return text;
}

// Runs one block to completion; false (with launch.error) on a failure.
bool run_block(Launch& launch)
{
    for (int i = 0; i < launch.threads; ++i)
    {
        Fiber& f = launch.fibers[i];
#ifdef LONGDEP_EMU_FAST_SWITCH
        f.sp = new_fiber_stack(stacks[i], kStackBytes);
#else
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = stacks[i];
        f.context.uc_stack.ss_size = kStackBytes;
        f.context.uc_link = &launch.scheduler;
        makecontext(&f.context, fiber_main, 0);
#endif
        f.state = State::Runnable;
        f.phase = 0;
        f.open.clear();
        f.groups.clear();
    }
    for (Warp& w : launch.warps) w.arrived = 0;
    launch.blockArrived = 0;
    launch.exited = 0;
    for (;;)
    {
        bool ran = false;
        for (int i = 0; i < launch.threads; ++i)
        {
            Fiber& f = launch.fibers[i];
            if (f.state != State::Runnable) continue;
            launch.current = i;
            threadIdx = f.tid;
#ifdef LONGDEP_EMU_FAST_SWITCH
            longdep_emu_switch(&launch.schedulerSp, f.sp);
#else
            swapcontext(&launch.scheduler, &f.context);
#endif
            if (launch.failed) return false;
            ran = true;
        }
        if (launch.exited == launch.threads) return true;
        if (!ran)
        {
            launch.failed = true;
            launch.error = describe_deadlock(launch);
            return false;
        }
    }
}

} // namespace

void fail(const char* what)
{
    Launch& launch = *active;
    launch.failed = true;
    launch.error = std::string(what) + " at " + where(launch, launch.current);
    yield_to_scheduler(); // never resumed
    std::abort();
}

void sync_block()
{
    Launch& launch = *active;
    launch.fibers[launch.current].state = State::AtBlock;
    ++launch.blockArrived;
    release_block_if_complete(launch);
    if (launch.fibers[launch.current].state == State::AtBlock) yield_to_scheduler();
}

const uint32_t* warp_exchange(WarpOp op, const uint32_t* mine, int words)
{
    Launch& launch = *active;
    const int self = launch.current;
    Fiber& f = launch.fibers[self];
    Warp& warp = launch.warps[self / 32];
    const int lane = self & 31;
    if (warp.arrived == 0) warp.op = op;
    else if (warp.op != op)
    {
        const std::string text = std::string("warp divergence: this lane is in ") + op_name(op) +
                                 " while lanes of its warp wait in " + op_name(warp.op);
        fail(text.c_str());
    }
    const int phase = f.phase;
    f.phase ^= 1;
    std::memcpy(&warp.words[phase][lane * kWordsPerLane], mine, (size_t)words * 4);
    if (++warp.arrived == 32)
    {
        warp.arrived = 0;
        const int first = self & ~31;
        for (int i = first; i < first + 32; ++i)
            if (launch.fibers[i].state == State::AtWarp) launch.fibers[i].state = State::Runnable;
    }
    else
    {
        f.state = State::AtWarp;
        yield_to_scheduler();
    }
    return warp.words[phase];
}

void cp_async16(void* smem, const void* gmem)
{
    Launch& launch = *active;
    const unsigned char* dynamicEnd = dynamic_smem + launch.sharedBytes;
    if (((uintptr_t)smem | (uintptr_t)gmem) % 16 != 0) fail("cp.async with an address that is not 16-byte aligned");
    if (dynamic_smem == nullptr || (unsigned char*)smem < dynamic_smem || (unsigned char*)smem + 16 > dynamicEnd)
        fail("cp.async to an address outside the block's dynamic shared memory");
    AsyncCopy copy;
    copy.dst = smem;
    std::memcpy(copy.bytes, gmem, 16);
    launch.fibers[launch.current].open.push_back(copy);
}

void cp_async_commit()
{
    Fiber& f = active->fibers[active->current];
    f.groups.push_back(std::move(f.open));
    f.open.clear();
}

void cp_async_wait(int newerGroupsLeft)
{
    Fiber& f = active->fibers[active->current];
    const size_t keep = newerGroupsLeft < 0 ? 0 : (size_t)newerGroupsLeft;
    while (f.groups.size() > keep)
    {
        for (const AsyncCopy& copy : f.groups.front()) std::memcpy(copy.dst, copy.bytes, 16);
        f.groups.erase(f.groups.begin());
    }
}

void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b0, b1};
    const uint32_t* all = warp_exchange(WarpOp::Mma, mine, 6);
    auto half_at = [](uint32_t word, int hi) { return f16_bits_to_f32((uint16_t)(hi ? word >> 16 : word & 0xffffu)); };
    // A[r][k]: lane (r % 8) * 4 + (k % 8) / 2, register (r >= 8) + 2 (k >= 8), half k & 1.
    auto A = [&](int r, int k) {
        const int lane = (r & 7) * 4 + ((k & 7) >> 1);
        return half_at(all[lane * kWordsPerLane + (r >> 3) + 2 * (k >> 3)], k & 1);
    };
    // B[k][n]: lane n * 4 + (k % 8) / 2, register 4 + (k >= 8), half k & 1.
    auto B = [&](int k, int n) {
        const int lane = n * 4 + ((k & 7) >> 1);
        return half_at(all[lane * kWordsPerLane + 4 + (k >> 3)], k & 1);
    };
    const int lane = (int)(threadIdx.x & 31u);
    const int g = lane >> 2, t = lane & 3;
    for (int e = 0; e < 4; ++e)
    {
        const int row = g + 8 * (e >> 1);
        const int col = 2 * t + (e & 1);
        float sum = 0.0f;
        for (int k = 0; k < 16; ++k) sum += A(row, k) * B(k, col); // f16 x f16 is exact in float32
        d[e] += sum;
    }
}

void ldsm_x4(uint32_t (&r)[4], const void* row)
{
    Launch& launch = *active;
    const unsigned char* at = static_cast<const unsigned char*>(row);
    if ((uintptr_t)at % 16 != 0) fail("ldmatrix with a row address that is not 16-byte aligned");
    if (dynamic_smem == nullptr || at < dynamic_smem || at + 16 > dynamic_smem + launch.sharedBytes)
        fail("ldmatrix from an address outside the block's dynamic shared memory");
    uint32_t mine[2];
    const uintptr_t address = (uintptr_t)at;
    mine[0] = (uint32_t)(address & 0xffffffffu);
    mine[1] = (uint32_t)((uint64_t)address >> 32);
    const uint32_t* all = warp_exchange(WarpOp::Ldmatrix, mine, 2);
    const int lane = (int)(threadIdx.x & 31u);
    for (int m = 0; m < 4; ++m)
    {
        const uint32_t* src = all + (m * 8 + (lane >> 2)) * kWordsPerLane;
        const uintptr_t rowAt = (uintptr_t)src[0] | ((uintptr_t)((uint64_t)src[1] << 32));
        std::memcpy(&r[m], reinterpret_cast<const unsigned char*>(rowAt) + 4 * (lane & 3), 4);
    }
}

} // namespace longdep_emu

// Kernels that misuse warp-wide calls on purpose, for the tests of the emulator's own checks (not in the fatbin).
extern "C" void emu_test_mixed_warp_calls(float* out)
{
    const int lane = (int)(threadIdx.x & 31u);
    float v = (float)lane;
    if (lane < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
    else
    {
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        const uint32_t a[4] = {0u, 0u, 0u, 0u};
        longdep::mma_16816(d, a, 0u, 0u);
        v = d[0];
    }
    out[threadIdx.x] = v;
}

extern "C" void emu_test_split_barriers(float* out)
{
    const int lane = (int)(threadIdx.x & 31u);
    if (threadIdx.x < 32) __syncthreads();      // warp 0 waits for the block
    else if (lane < 16) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1); // half of warp 1 shuffles
    // the other half of warp 1 returns: the shuffle never completes
}

// ldmatrix.x4 for the test of the emulator's layout: shared memory holds 64 rows of 8 halves whose 16-bit value is
// row * 8 + column; lane l gives the address of row rowOf[l] (a negative entry: 2 bytes into row 0, misaligned) and
// writes its four registers to out[4 l .. 4 l + 3]. One warp, 1024 bytes of dynamic shared memory.
extern "C" void emu_test_ldmatrix(const int* rowOf, unsigned* out)
{
    uint16_t* rows = reinterpret_cast<uint16_t*>(longdep_emu::dynamic_smem);
    for (int i = (int)threadIdx.x; i < 64 * 8; i += 32) rows[i] = (uint16_t)i;
    __syncthreads();
    const int lane = (int)(threadIdx.x & 31u);
    const int row = rowOf[lane];
    const __half* at = row < 0 ? reinterpret_cast<const __half*>(rows + 1) : reinterpret_cast<const __half*>(rows + row * 8);
    uint32_t r[4];
    longdep::ldsm_x4(r, at);
    for (int m = 0; m < 4; ++m) out[4 * lane + m] = r[m];
}

namespace {

template <typename... A, size_t... I>
void call_with(void (*kernel)(A...), void** args, std::index_sequence<I...>)
{
    kernel(*static_cast<A*>(args[I])...);
}

template <typename... A>
constexpr size_t arity(void (*)(A...)) { return sizeof...(A); }

template <auto Kernel>
void invoke(void** args)
{
    call_with(Kernel, args, std::make_index_sequence<arity(Kernel)>{});
}

// A parameter's kind as the host's KernelSpec.Parameters spells it: p pointer, i int, l 64-bit integer, f float,
// d double (the emulated driver copies each argument's bytes at launch by these).
template <typename T>
constexpr char kind_of()
{
    if constexpr (std::is_pointer_v<T>) return 'p';
    else if constexpr (std::is_same_v<T, int>) return 'i';
    else if constexpr (std::is_integral_v<T> && sizeof(T) == 8) return 'l';
    else if constexpr (std::is_same_v<T, float>) return 'f';
    else if constexpr (std::is_same_v<T, double>) return 'd';
    else return '?';
}

template <typename... A>
struct Signature
{
    static constexpr char text[] = {kind_of<A>()..., '\0'};
};

template <typename... A>
constexpr const char* signature_of(void (*)(A...)) { return Signature<A...>::text; }

struct Entry
{
    const char* name;
    void (*run)(void**);
    const char* signature;
};

// Every kernel of longdep_kernels.cu (a test checks this list against the host's KernelNames.All), then the
// emulator's own test kernels (emu_test_*).
#define LONGDEP_EMU_ENTRY(name) Entry{#name, invoke<name>, signature_of(name)}
const Entry kEntries[] = {
    LONGDEP_EMU_ENTRY(embed_gather_f32),      LONGDEP_EMU_ENTRY(embed_gather_f16),
    LONGDEP_EMU_ENTRY(embed_gather_bf16),     LONGDEP_EMU_ENTRY(rmsnorm_f32),
    LONGDEP_EMU_ENTRY(rmsnorm_f16),           LONGDEP_EMU_ENTRY(rmsnorm_bf16),
    LONGDEP_EMU_ENTRY(rope_qk),               LONGDEP_EMU_ENTRY(add_bias_f32),
    LONGDEP_EMU_ENTRY(convert_f32_to_f16),    LONGDEP_EMU_ENTRY(convert_f32_to_bf16),
    LONGDEP_EMU_ENTRY(swiglu_f32),            LONGDEP_EMU_ENTRY(swiglu_f16),
    LONGDEP_EMU_ENTRY(swiglu_bf16),           LONGDEP_EMU_ENTRY(attention_fwd_f32),
    LONGDEP_EMU_ENTRY(attention_fwd_f16),     LONGDEP_EMU_ENTRY(attention_fwd_bf16),
    LONGDEP_EMU_ENTRY(attention_mma64_f32),   LONGDEP_EMU_ENTRY(attention_mma64_f16),
    LONGDEP_EMU_ENTRY(attention_mma64_bf16),  LONGDEP_EMU_ENTRY(attention_mma128_f32),
    LONGDEP_EMU_ENTRY(attention_mma128_f16),  LONGDEP_EMU_ENTRY(attention_mma128_bf16),
    LONGDEP_EMU_ENTRY(pfs_row_stats),         LONGDEP_EMU_ENTRY(pfs_column_mass),
    LONGDEP_EMU_ENTRY(pfs_window_sum),        LONGDEP_EMU_ENTRY(pfs_row_stats_mma64),
    LONGDEP_EMU_ENTRY(pfs_row_stats_mma128),  LONGDEP_EMU_ENTRY(pfs_column_mass_mma64),
    LONGDEP_EMU_ENTRY(pfs_column_mass_mma128), LONGDEP_EMU_ENTRY(loss_row_nll),
    LONGDEP_EMU_ENTRY(loss_segment_sum),
    LONGDEP_EMU_ENTRY(kv_pack_f16),
    LONGDEP_EMU_ENTRY(attention_mma64_kv16_f32),  LONGDEP_EMU_ENTRY(attention_mma64_kv16_f16),
    LONGDEP_EMU_ENTRY(attention_mma64_kv16_bf16), LONGDEP_EMU_ENTRY(attention_mma128_kv16_f32),
    LONGDEP_EMU_ENTRY(attention_mma128_kv16_f16), LONGDEP_EMU_ENTRY(attention_mma128_kv16_bf16),
    LONGDEP_EMU_ENTRY(attention_mma64_kv16_wide_f32), LONGDEP_EMU_ENTRY(attention_mma64_kv16_wide_f16),
    LONGDEP_EMU_ENTRY(attention_mma64_kv16_wide_bf16), LONGDEP_EMU_ENTRY(pfs_row_stats_mma64_wide),
    LONGDEP_EMU_ENTRY(pfs_column_mass_mma64_wide),
    LONGDEP_EMU_ENTRY(attention_mma64_kv16_wide8_f32), LONGDEP_EMU_ENTRY(attention_mma64_kv16_wide8_f16),
    LONGDEP_EMU_ENTRY(attention_mma64_kv16_wide8_bf16), LONGDEP_EMU_ENTRY(pfs_row_stats_mma64_kv16_wide),
    LONGDEP_EMU_ENTRY(pfs_row_stats_mma64_kv16_wide8),
    LONGDEP_EMU_ENTRY(embed_add_positions),
    LONGDEP_EMU_ENTRY(layernorm_f32),         LONGDEP_EMU_ENTRY(layernorm_f16),
    LONGDEP_EMU_ENTRY(layernorm_bf16),        LONGDEP_EMU_ENTRY(rmsnorm_add_f32),
    LONGDEP_EMU_ENTRY(qk_rmsnorm),            LONGDEP_EMU_ENTRY(bias_relu_f32),
    LONGDEP_EMU_ENTRY(bias_relu_f16),         LONGDEP_EMU_ENTRY(bias_relu_bf16),
    LONGDEP_EMU_ENTRY(geglu_tanh_f32),        LONGDEP_EMU_ENTRY(geglu_tanh_f16),
    LONGDEP_EMU_ENTRY(geglu_tanh_bf16),
    LONGDEP_EMU_ENTRY(emu_test_mixed_warp_calls), LONGDEP_EMU_ENTRY(emu_test_split_barriers),
    LONGDEP_EMU_ENTRY(emu_test_ldmatrix),
};
#undef LONGDEP_EMU_ENTRY

void set_error(char* error, int errorBytes, const std::string& text)
{
    if (error == nullptr || errorBytes <= 0) return;
    std::snprintf(error, (size_t)errorBytes, "%s", text.c_str());
}

} // namespace

extern "C" {

int longdep_emu_kernel_count() { return (int)(sizeof kEntries / sizeof kEntries[0]); }

const char* longdep_emu_kernel_name(int i)
{
    return i >= 0 && i < longdep_emu_kernel_count() ? kEntries[i].name : nullptr;
}

// The parameter kinds of kernel `name` (one letter each, see kind_of), or null when there is no such kernel.
const char* longdep_emu_kernel_signature(const char* name)
{
    for (const Entry& e : kEntries)
        if (std::strcmp(e.name, name) == 0) return e.signature;
    return nullptr;
}

// Runs kernel `name` on grid[3] x block[3] with `sharedBytes` of dynamic shared memory; args[i] points at the
// value of parameter i (the layout cuLaunchKernel takes). Returns 0, or 1 with a message in `error`.
int longdep_emu_launch(const char* name, const unsigned* grid, const unsigned* block, int sharedBytes, void** args,
                       char* error, int errorBytes)
{
    const Entry* entry = nullptr;
    for (const Entry& e : kEntries)
        if (std::strcmp(e.name, name) == 0) entry = &e;
    if (entry == nullptr)
    {
        set_error(error, errorBytes, std::string("the emulator has no kernel named ") + name);
        return 1;
    }
    const long long threads = (long long)block[0] * block[1] * block[2];
    if (threads <= 0 || threads > 1024 || threads % 32 != 0 || grid[0] == 0 || grid[1] == 0 || grid[2] == 0 ||
        sharedBytes < 0)
    {
        set_error(error, errorBytes, std::string(name) + ": the emulator runs blocks of 32..1024 threads (a multiple of 32) " +
                                         "on a non-empty grid");
        return 1;
    }
    if (longdep_emu::active != nullptr)
    {
        set_error(error, errorBytes, "the emulator does not nest launches");
        return 1;
    }

    longdep_emu::Launch launch;
    launch.entry = entry->run;
    launch.args = args;
    launch.threads = (int)threads;
    launch.sharedBytes = sharedBytes;
    launch.fibers.resize((size_t)threads);
    launch.warps.resize((size_t)threads / 32);
    for (unsigned z = 0, i = 0; z < block[2]; ++z)
        for (unsigned y = 0; y < block[1]; ++y)
            for (unsigned x = 0; x < block[0]; ++x, ++i) launch.fibers[i].tid = uint3{x, y, z};
    while (longdep_emu::stacks.size() < (size_t)threads)
    {
        char* stack = static_cast<char*>(std::malloc(longdep_emu::kStackBytes));
        if (stack == nullptr)
        {
            set_error(error, errorBytes, "the emulator could not allocate fiber stacks");
            return 1;
        }
        longdep_emu::stacks.push_back(stack);
    }
    std::vector<unsigned char> smem((size_t)sharedBytes + 16);
    longdep_emu::dynamic_smem = sharedBytes > 0 ? smem.data() : nullptr;
    blockDim = dim3{block[0], block[1], block[2]};
    gridDim = dim3{grid[0], grid[1], grid[2]};

    longdep_emu::active = &launch;
    bool ok = true;
    for (unsigned z = 0; ok && z < grid[2]; ++z)
        for (unsigned y = 0; ok && y < grid[1]; ++y)
            for (unsigned x = 0; ok && x < grid[0]; ++x)
            {
                blockIdx = uint3{x, y, z};
                std::memset(smem.data(), 0xFF, smem.size());
                ok = longdep_emu::run_block(launch);
            }
    longdep_emu::active = nullptr;
    longdep_emu::dynamic_smem = nullptr;
    if (!ok)
    {
        set_error(error, errorBytes, std::string(name) + ": " + launch.error);
        return 1;
    }
    return 0;
}

// Rounds float32 values in place through f16 (type 1) or bf16 (type 2) with the emulator's conversions.
void longdep_emu_round(float* values, int count, int type)
{
    for (int i = 0; i < count; ++i)
        values[i] = type == 1 ? longdep_emu::f16_bits_to_f32(longdep_emu::f32_to_f16_bits(values[i]))
                              : longdep_emu::bf16_bits_to_f32(longdep_emu::f32_to_bf16_bits(values[i]));
}

} // extern "C"
