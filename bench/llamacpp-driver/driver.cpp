// Runs a GGUF model through libllama (a native llama.cpp build) the way the CPU benchmark runs longdep, and prints
// one JSON line: load seconds, forward seconds, the sum and count of the token NLLs, peak RSS, and `nll`: every
// token's NLL (forward) or every pass's mean NLL in run order (prolong: chunk j, then its pairs (i, j), i > j).
//   forward <model> <ids-file> <threads>            : all tokens in one batch, logits of every position
//   prolong <model> <ids-file> <threads> <chunk>    : ProLong's single and pair passes; each chunk's KV is kept in a
//                                                     sequence and copied (llama_kv_cache_seq_cp) to every pair's
//                                                     sequence, so a pair runs only the chunk's tokens
//   prolong-batched <model> <ids-file> <threads> <chunk> [rows]
//                                                   : the same, with the pairs (i, j) of one chunk j decoded together,
//                                                     up to `rows` (2048) tokens a batch, each pair in its own sequence
//                                                     holding a copy of chunk j's cache
#include "llama.h"
#include <sys/resource.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static long peak_rss_kb() {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

// -log softmax(logits)[target] in double.
static double nll(const float * logits, int vocab, int target) {
    double mx = logits[0];
    for (int i = 1; i < vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += std::exp(logits[i] - mx);
    return mx + std::log(sum) - logits[target];
}

int main(int argc, char ** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s forward|prolong|prolong-batched MODEL IDS THREADS [CHUNK [ROWS]]\n", argv[0]);
        return 2;
    }
    std::string mode = argv[1];
    int threads = std::atoi(argv[4]);
    int chunk = argc > 5 ? std::atoi(argv[5]) : 128;
    bool batched = mode == "prolong-batched";
    int per_batch = batched ? std::max(1, (argc > 6 ? std::atoi(argv[6]) : 2048) / chunk) : 1;
    std::vector<llama_token> ids;
    {
        std::ifstream in(argv[3]);
        long v;
        while (in >> v) ids.push_back((llama_token) v);
    }
    if (ids.size() < 2) { std::fprintf(stderr, "%s: need at least 2 token ids\n", argv[3]); return 2; }

    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    double t0 = now();
    auto mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[2], mp);
    if (!model) { std::fprintf(stderr, "cannot load %s\n", argv[2]); return 1; }
    const int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    int n = (int) ids.size();
    int chunks = n / chunk;
    bool prolong = mode == "prolong" || batched;
    if (!prolong && mode != "forward") { std::fprintf(stderr, "unknown mode %s (forward, prolong, prolong-batched)\n", mode.c_str()); return 2; }
    int seqs = prolong ? chunks + per_batch : 1;
    auto cp = llama_context_default_params();
    cp.n_ctx = prolong ? (uint32_t) (chunk * chunks + 2 * per_batch * chunk) : (uint32_t) n;
    cp.n_batch = prolong ? (uint32_t) (per_batch * chunk) : (uint32_t) n;
    cp.n_ubatch = cp.n_batch;
    cp.n_seq_max = (uint32_t) seqs;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { std::fprintf(stderr, "cannot create a context\n"); return 1; }
    double loaded = now();

    double sum = 0;
    long count = 0;
    std::vector<double> nlls;
    double forward_s = 0;
    if (mode == "forward") {
        llama_batch b = llama_batch_init(n, 0, 1);
        for (int t = 0; t < n; t++) {
            b.token[t] = ids[t]; b.pos[t] = t; b.n_seq_id[t] = 1; b.seq_id[t][0] = 0; b.logits[t] = true;
        }
        b.n_tokens = n;
        double f0 = now();
        if (llama_decode(ctx, b) != 0) { std::fprintf(stderr, "decode failed\n"); return 1; }
        for (int t = 0; t + 1 < n; t++) { nlls.push_back(nll(llama_get_logits_ith(ctx, t), vocab, ids[t + 1])); sum += nlls.back(); count++; }
        forward_s = now() - f0;
        llama_batch_free(b);
    } else {
        // Sequence j holds chunk j alone (single pass); pair (i, j) runs chunk i at positions chunk..2chunk-1 in
        // sequence chunks + b, which first receives a copy of sequence j's cache and is cleared after the pair.
        // prolong: one pair a decode (b = 0); prolong-batched: up to per_batch pairs of chunk j in one decode.
        llama_batch b = llama_batch_init(per_batch * chunk, 0, 1);
        double f0 = now();
        // Runs `count` sequences of `chunk` tokens (seq + k at positions first.., tokens tok[k]) in one decode; appends
        // each sequence's mean NLL (ln of its perplexity) and returns their sum of NLLs.
        auto run = [&](int seq, int first, const std::vector<const llama_token *> & tok) {
            int m = (int) tok.size();
            for (int k = 0; k < m; k++)
                for (int t = 0; t < chunk; t++) {
                    int r = k * chunk + t;
                    b.token[r] = tok[k][t]; b.pos[r] = first + t; b.n_seq_id[r] = 1; b.seq_id[r][0] = seq + k; b.logits[r] = true;
                }
            b.n_tokens = m * chunk;
            if (llama_decode(ctx, b) != 0) { std::fprintf(stderr, "decode failed\n"); std::exit(1); }
            double total = 0;
            for (int k = 0; k < m; k++) {
                double s = 0;
                for (int t = 0; t + 1 < chunk; t++) s += nll(llama_get_logits_ith(ctx, k * chunk + t), vocab, tok[k][t + 1]);
                nlls.push_back(s / (chunk - 1));
                total += s;
            }
            return total;
        };
        for (int j = 0; j < chunks; j++) {
            sum += run(j, 0, {&ids[j * chunk]}); count += chunk - 1;
            for (int i0 = j + 1; i0 < chunks; i0 += per_batch) {
                std::vector<const llama_token *> tok;
                for (int i = i0; i < chunks && i < i0 + per_batch; i++) {
                    int seq = chunks + (i - i0);
                    llama_kv_cache_seq_rm(ctx, seq, -1, -1);
                    llama_kv_cache_seq_cp(ctx, j, seq, 0, chunk);
                    tok.push_back(&ids[i * chunk]);
                }
                sum += run(chunks, chunk, tok); count += (long) tok.size() * (chunk - 1);
                for (size_t k = 0; k < tok.size(); k++) llama_kv_cache_seq_rm(ctx, chunks + (int) k, -1, -1);
            }
        }
        forward_s = now() - f0;
        llama_batch_free(b);
    }
    std::printf("{\"engine\":\"llama.cpp\",\"mode\":\"%s\",\"tokens\":%d,\"threads\":%d,\"load_s\":%.4f,\"forward_s\":%.4f,"
                "\"nll_sum\":%.9f,\"nll_count\":%ld,\"peak_rss_kb\":%ld,\"nll\":[",
                mode.c_str(), n, threads, loaded - t0, forward_s, sum, count, peak_rss_kb());
    for (size_t i = 0; i < nlls.size(); i++) std::printf("%s%.9f", i ? "," : "", nlls[i]);
    std::printf("]}\n");
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
