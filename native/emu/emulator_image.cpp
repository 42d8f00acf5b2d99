// Writes the kernel emulator's module image for the emulated driver (cuda_driver_emu.cpp): the magic
// "longdep kernel emulator image" and every kernel name of liblongdep_kernel_emu.so, each NUL-terminated, then an
// empty name. It stands in for nvcc's fatbin where nvcc is missing (LONGDEP_KERNELS=<out>/emu-cuda/longdep_kernels.emu),
// so the host's whole CUDA path runs on the emulated GPU without the CUDA toolkit. A real driver rejects it.
// Usage: emulator_image <output file>
#include <cstdio>

extern "C" {
int longdep_emu_kernel_count();
const char* longdep_emu_kernel_name(int i);
}

int main(int argc, char** argv)
{
    if (argc != 2)
    {
        std::fprintf(stderr, "usage: emulator_image <output file>\n");
        return 2;
    }
    std::FILE* f = std::fopen(argv[1], "wb");
    if (f == nullptr)
    {
        std::perror(argv[1]);
        return 1;
    }
    static const char magic[] = "longdep kernel emulator image";
    std::fwrite(magic, 1, sizeof magic, f);
    int n = longdep_emu_kernel_count();
    for (int i = 0; i < n; i++)
    {
        const char* name = longdep_emu_kernel_name(i);
        std::fputs(name, f);
        std::fputc(0, f);
    }
    std::fputc(0, f);
    if (std::fclose(f) != 0)
    {
        std::perror(argv[1]);
        return 1;
    }
    std::printf("%d kernels\n", n);
    return 0;
}
