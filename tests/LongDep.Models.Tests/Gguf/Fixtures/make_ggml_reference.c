// Generator of ggml-reference.gguf: a GGUF file written by ggml's own gguf writer, holding tensors quantized by
// ggml's quantizers ("q.<type>") and, beside each, ggml's own dequantization of it as F32 ("ref.<type>"), plus
// metadata of most value types. GgufGgmlReferenceTests checks our reader and dequantizers against it.
//
// Made with ggml commit d99724f2b141fed9e1a9f402213506c081433465 (github.com/ggml-org/ggml):
//   cmake -S ggml -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF && cmake --build build --target ggml-base
//   gcc -O2 make_ggml_reference.c -Iggml/include -Lbuild/src -lggml-base -lm -Wl,-rpath,build/src -o mk
//   ./mk make ggml-reference.gguf      (./mk check FILE prints what ggml reads from any GGUF file)

#include "ggml.h"
#include "gguf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

static uint64_t st = 88172645463325252ull;
static float rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (float)((st >> 11) * (1.0 / 9007199254740992.0)) * 4.0f - 2.0f; }

static int make(const char *out) {
    struct ggml_init_params ip = { 64u << 20, NULL, false };
    struct ggml_context *ctx = ggml_init(ip);
    struct gguf_context *g = gguf_init_empty();

    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_u8(g, "k.u8", 250); gguf_set_val_i8(g, "k.i8", -7);
    gguf_set_val_u16(g, "k.u16", 65000); gguf_set_val_i16(g, "k.i16", -30000);
    gguf_set_val_u32(g, "k.u32", 4000000000u); gguf_set_val_i32(g, "k.i32", -2000000000);
    gguf_set_val_f32(g, "k.f32", 0.1f); gguf_set_val_u64(g, "k.u64", 18000000000000000000ull);
    gguf_set_val_i64(g, "k.i64", -9000000000000000000ll); gguf_set_val_f64(g, "k.f64", 2.718281828459045);
    gguf_set_val_bool(g, "k.bool", true); gguf_set_val_str(g, "k.str", "h\xc3\xa9llo");
    float fa[3] = {1.5f, -2.25f, 3e-8f}; gguf_set_arr_data(g, "k.arr_f32", GGUF_TYPE_FLOAT32, fa, 3);
    int32_t ia[4] = {-1, 0, 1, 2147483647}; gguf_set_arr_data(g, "k.arr_i32", GGUF_TYPE_INT32, ia, 4);
    const char *sa[3] = {"<s>", "", "\xe2\x96\x81the"}; gguf_set_arr_str(g, "k.arr_str", sa, 3);
    enum ggml_type types[] = { GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_F32 };
    const int64_t nper = 512, nrows = 2;
    float *src = malloc(sizeof(float) * nper * nrows);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (int64_t i = 0; i < nper * nrows; i++) src[i] = rnd() * (1 + (i % 97) / 10.0f);
        enum ggml_type ty = types[t];
        struct ggml_tensor *q = ggml_new_tensor_2d(ctx, ty, nper, nrows);
        char name[64]; snprintf(name, sizeof name, "q.%s", ggml_type_name(ty)); ggml_set_name(q, name);
        ggml_quantize_chunk(ty, src, q->data, 0, nrows, nper, NULL);
        struct ggml_tensor *r = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, nper, nrows);
        snprintf(name, sizeof name, "ref.%s", ggml_type_name(ty)); ggml_set_name(r, name);
        if (ty == GGML_TYPE_F32) memcpy(r->data, q->data, ggml_nbytes(q));
        else ggml_get_type_traits(ty)->to_float(q->data, (float *)r->data, nper * nrows);
        gguf_add_tensor(g, q); gguf_add_tensor(g, r);
    }
    bool ok = gguf_write_to_file(g, out, false);
    printf("wrote %s ok=%d\n", out, ok);
    return ok ? 0 : 1;
}

static int check(const char *in) {
    struct ggml_context *ctx = NULL;
    struct gguf_init_params p = { false, &ctx };
    struct gguf_context *g = gguf_init_from_file(in, p);
    if (!g) { printf("REJECTED\n"); return 1; }
    printf("version %u alignment %zu data_offset %zu n_kv %lld\n", gguf_get_version(g), gguf_get_alignment(g), gguf_get_data_offset(g), (long long)gguf_get_n_kv(g));
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        const char *name = gguf_get_tensor_name(g, i);
        struct ggml_tensor *t = ggml_get_tensor(ctx, name);
        int64_t n = ggml_nelements(t);
        float *f = malloc(sizeof(float) * (n ? n : 1));
        if (t->type == GGML_TYPE_F32) memcpy(f, t->data, n * 4);
        else ggml_get_type_traits(t->type)->to_float(t->data, f, n);
        double s = 0, a = 0; for (int64_t k = 0; k < n; k++) { s += f[k]; a += f[k] < 0 ? -f[k] : f[k]; }
        printf("%s %s ne=[%lld,%lld,%lld,%lld] off=%zu sum=%.17g abs=%.17g first=%.9g\n", name, ggml_type_name(t->type),
            (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], gguf_get_tensor_offset(g, i), s, a, n ? f[0] : 0.0f);
        free(f);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "make")) return make(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "check")) return check(argv[2]);
    fprintf(stderr, "usage: xcheck make|check FILE\n"); return 2;
}
