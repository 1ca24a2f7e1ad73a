#!/usr/bin/python3
"""PyTorch (Debian python3-torch) on the shapes bench/encoder_bench runs: a BERT encoder
stack (fused QKV linear, softmax attention, erf GELU feed-forward, post-LayerNorm) with
random weights, eval mode, no_grad, float32, and dynamic int8 quantisation of the linear
layers for --int8 (torch.quantization.quantize_dynamic, PyTorch's own int8 CPU path).

  /usr/bin/python3 bench/encoder_peer.py --batch 32 --seq 128 --threads 2 [--int8]
"""
import argparse, json, time
import torch
from torch import nn

class Layer(nn.Module):
    def __init__(self, h, heads, ffn):
        super().__init__()
        self.h, self.nh = h, heads
        self.qkv, self.o = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.f1, self.f2 = nn.Linear(h, ffn), nn.Linear(ffn, h)
        self.ln1, self.ln2 = nn.LayerNorm(h, eps=1e-12), nn.LayerNorm(h, eps=1e-12)

    def forward(self, x, mask):
        B, T, H = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.nh, H // self.nh).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) / (H // self.nh) ** 0.5 + mask, -1) @ v
        x = self.ln1(x + self.o(a.transpose(1, 2).reshape(B, T, H)))
        return self.ln2(x + self.f2(nn.functional.gelu(self.f1(x))))

def main():
    p = argparse.ArgumentParser()
    for name, default in [("layers", 6), ("hidden", 384), ("heads", 12), ("ffn", 1536), ("batch", 32), ("seq", 128),
                          ("threads", 2)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--int8", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = nn.ModuleList([Layer(a.hidden, a.heads, a.ffn) for _ in range(a.layers)]).eval()
    if a.int8:
        model = torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    x = torch.randn(a.batch, a.seq, a.hidden)
    mask = torch.zeros(a.batch, 1, 1, a.seq)

    def run():
        y = x
        for layer in model:
            y = layer(y, mask)
        return y.mean(1)

    with torch.no_grad():
        run()
        n, start = 0, time.time()
        while time.time() - start < a.seconds or n < 3:
            run()
            n += 1
        elapsed = time.time() - start
    print(json.dumps({"peer": "pytorch " + torch.__version__, "batch": a.batch, "seq": a.seq, "threads": a.threads,
                      "int8": a.int8, "sentences_per_s": round(n * a.batch / elapsed, 1),
                      "ms_per_batch": round(elapsed / n * 1000, 2)}))

if __name__ == "__main__":
    main()
