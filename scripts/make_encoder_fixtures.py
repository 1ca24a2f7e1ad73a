#!/usr/bin/python3
"""Makes the native encoder's test fixtures (committed; tests never need PyTorch).

  /usr/bin/python3 scripts/make_encoder_fixtures.py   # needs Debian's python3-torch

Writes tests/fixtures/tiny-bert/, a small random BERT in the Hugging Face + sentence-
transformers layout (2 layers, hidden 64, 4 heads, a 1,000-entry vocabulary, F16
safetensors with the `bert.` prefix), and tests/fixtures/encoder_reference.json:
  - tokenizer cases for ../shared/models/all-MiniLM-L6-v2-tokenizer, tokenized by the
    reference BertTokenizer below (Hugging Face's BasicTokenizer + WordpieceTokenizer
    algorithm, with Python's own unicodedata);
  - token ids and mean-pooled, normalised embeddings of texts through the tiny model,
    computed by the BertModel equations written out in PyTorch (float64).
"""
import json, os, struct, unicodedata, random
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "models", "all-MiniLM-L6-v2-tokenizer")
OUT = os.path.join(ROOT, "tests", "fixtures")


# ---- reference tokenizer (Hugging Face BertTokenizer's algorithm) ----
def is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"

def is_control(c):
    if c in "\t\n\r":
        return False
    return unicodedata.category(c) in ("Cc", "Cf")

def is_punctuation(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")

def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or
            0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or
            0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)

class BertTokenizer:
    def __init__(self, vocab, lower=True):
        self.vocab = vocab
        self.lower = lower

    def basic(self, text):
        out = []
        for c in text:
            cp = ord(c)
            if cp == 0 or cp == 0xFFFD or is_control(c):
                continue
            if is_whitespace(c):
                out.append(" ")
            elif is_cjk(cp):
                out.append(" " + c + " ")
            else:
                out.append(c)
        words = []
        for tok in "".join(out).split():
            if self.lower:
                tok = tok.lower()
                tok = "".join(c for c in unicodedata.normalize("NFD", tok) if unicodedata.category(c) != "Mn")
            cur = ""
            for c in tok:
                if is_punctuation(c):
                    if cur:
                        words.append(cur)
                    words.append(c)
                    cur = ""
                else:
                    cur += c
            if cur:
                words.append(cur)
        return words

    def wordpiece(self, word):
        if len(word) > 100:
            return [self.vocab["[UNK]"]]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.vocab["[UNK]"]]
            ids.append(found)
            start = end
        return ids

    def encode(self, text, max_len=256):
        ids = [i for w in self.basic(text) for i in self.wordpiece(w)]
        return [self.vocab["[CLS]"]] + ids[: max_len - 2] + [self.vocab["[SEP]"]]


def read_vocab(path):
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


TOKENIZER_CASES = [
    "Hello World",
    "Héllo, Wörld! Ça va? naïve café résumé",
    "ÅNGSTRÖM Straße İstanbul",
    "中文字符 and 日本語のテキスト mixed",
    "don't stop-believing... (really) [yes] {no} #hash @user $5.00 100%",
    "unaffable tokenization embeddings transformers",
    "a" * 101 + " short",
    "x" * 100,
    "",
    "   \t\n  ",
    "emoji 😀 🚀 test ❤️",
    "control\u0000chars\u200bzero\u0007bell\ttab\r\nnewline",
    "curly “quotes” and — dashes – and ellipsis…",
    "numbers 3.14159 and 1,000,000 and 2nd",
    "Ünïcödé ÀÉÎÕÜ ñ",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
]
INVALID_UTF8_CASES = [b"bad \xff\xfe bytes", b"trunc \xe2\x82", b"ok \xc3\xa9 \x80 end"]


# ---- tiny BERT ----
H, HEADS, FFN, LAYERS, VOCAB, MAXPOS = 64, 4, 128, 2, 1000, 64

def make_vocab(full):
    # Specials at their BERT ids are not possible in 1,000 entries; the tiny model uses its
    # own order: specials, characters, then the most useful words and pieces of MiniLM's.
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-()")
    words = specials + chars + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    seen = set(words)
    for w, _ in sorted(full.items(), key=lambda kv: kv[1]):
        if len(words) >= VOCAB:
            break
        if w.startswith("[") or w in seen or not all(ch.isascii() for ch in w):
            continue
        words.append(w)
        seen.add(w)
    return words

def erf_gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / 2 ** 0.5))

def layer_norm(x, g, b, eps=1e-12):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * g + b

def bert_forward(w, ids):
    """BertModel's equations for one unpadded sequence, float64."""
    T = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:T] + \
        w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    d = H // HEADS
    for l in range(LAYERS):
        p = f"encoder.layer.{l}."
        lin = lambda name, v: v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q = lin("attention.self.query", x).view(T, HEADS, d).transpose(0, 1)
        k = lin("attention.self.key", x).view(T, HEADS, d).transpose(0, 1)
        v = lin("attention.self.value", x).view(T, HEADS, d).transpose(0, 1)
        a = torch.softmax(q @ k.transpose(1, 2) / d ** 0.5, -1) @ v
        a = a.transpose(0, 1).reshape(T, H)
        x = layer_norm(x + lin("attention.output.dense", a), w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"])
        f = lin("output.dense", erf_gelu(lin("intermediate.dense", x)))
        x = layer_norm(x + f, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    return x

def random_weights(rng):
    shapes = {
        "embeddings.word_embeddings.weight": (VOCAB, H),
        "embeddings.position_embeddings.weight": (MAXPOS, H),
        "embeddings.token_type_embeddings.weight": (2, H),
        "embeddings.LayerNorm.weight": (H,), "embeddings.LayerNorm.bias": (H,),
    }
    for l in range(LAYERS):
        p = f"encoder.layer.{l}."
        for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            shapes[p + name + ".weight"] = (H, H)
            shapes[p + name + ".bias"] = (H,)
        shapes[p + "intermediate.dense.weight"] = (FFN, H)
        shapes[p + "intermediate.dense.bias"] = (FFN,)
        shapes[p + "output.dense.weight"] = (H, FFN)
        shapes[p + "output.dense.bias"] = (H,)
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"]:
            shapes[p + ln + ".weight"] = (H,)
            shapes[p + ln + ".bias"] = (H,)
    w = {}
    for name, shape in shapes.items():
        if name.endswith("LayerNorm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=rng)
        elif name.endswith("bias") or "LayerNorm" in name:
            t = 0.05 * torch.randn(shape, generator=rng)
        else:
            t = 0.08 * torch.randn(shape, generator=rng)
        # Stored as F16: round here so the reference uses exactly the stored values.
        w[name] = t.half().double()
    return w

def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        data = t.half().numpy().tobytes()
        header[name] = {"dtype": "F16", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    full_vocab = read_vocab(os.path.join(SHARED, "vocab.txt"))
    tok = BertTokenizer(full_vocab)
    ref = {"tokenizer": [], "model": []}
    for text in TOKENIZER_CASES:
        ref["tokenizer"].append({"text": text, "ids": tok.encode(text)})
    for raw in INVALID_UTF8_CASES:
        ref["tokenizer"].append({"bytes_hex": raw.hex(), "ids": tok.encode(raw.decode("utf-8", errors="replace"))})
    long_text = " ".join(["word"] * 400)
    ref["tokenizer"].append({"text": long_text, "max_seq_length": 256, "ids": tok.encode(long_text, 256)})

    rng = torch.Generator().manual_seed(20261124)
    words = make_vocab(full_vocab)
    d = os.path.join(OUT, "tiny-bert")
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    w = random_weights(rng)
    write_safetensors(os.path.join(d, "model.safetensors"), {"bert." + k: v for k, v in w.items()})
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": H, "num_attention_heads": HEADS,
              "num_hidden_layers": LAYERS, "intermediate_size": FFN, "hidden_act": "gelu",
              "max_position_embeddings": MAXPOS, "type_vocab_size": 2, "vocab_size": VOCAB,
              "layer_norm_eps": 1e-12, "pad_token_id": 0}
    json.dump(config, open(os.path.join(d, "config.json"), "w"), indent=1)
    json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
              open(os.path.join(d, "modules.json"), "w"), indent=1)
    json.dump({"word_embedding_dimension": H, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True},
              open(os.path.join(d, "1_Pooling", "config.json"), "w"), indent=1)
    json.dump({"max_seq_length": 48, "do_lower_case": False}, open(os.path.join(d, "sentence_bert_config.json"), "w"))
    json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer"},
              open(os.path.join(d, "tokenizer_config.json"), "w"))

    tiny_vocab = {t: i for i, t in enumerate(words)}
    tiny = BertTokenizer(tiny_vocab)
    texts = ["Hello World", "the quick brown fox jumps over the lazy dog",
             "A much longer sentence, with punctuation; numbers like 42 and 7, and words that split into pieces.",
             "short", "Unknown Ωmega symbols ☃ here",
             " ".join(["repeat"] * 80)]  # longer than max_seq_length: truncated
    for text in texts:
        ids = tiny.encode(text, 48)
        x = bert_forward(w, torch.tensor(ids))
        mean = x.mean(0)
        cls = x[0]
        ref["model"].append({"text": text, "ids": ids,
                             "mean": (mean / mean.norm()).tolist(), "cls": (cls / cls.norm()).tolist()})
    with open(os.path.join(OUT, "encoder_reference.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, indent=0)
    print("wrote", d, "and encoder_reference.json")

if __name__ == "__main__":
    main()
