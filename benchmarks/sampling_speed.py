"""Benchmark: sampling with the KV cache versus recomputing every prefix (issue 3).

    python benchmarks/sampling_speed.py                        # CPU, the names-reinforce generator
    python benchmarks/sampling_speed.py --device cuda --batch 128 1024

Builds the generator of `configs/names-reinforce.yaml` (random weights: speed does not depend on them),
samples `max_length` tokens per row with EOS disallowed (so both ways do the same work), and prints one
Markdown row per (context, batch): generated tokens/s with and without the cache, their ratio, and on CUDA
the peak memory. Both ways are timed alternately in one process, so the ratio is robust to machine noise.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from langan.config import load_config
from langan.generation import sample
from langan.models import build_generator, count_parameters

PRESET = "configs/names-reinforce.yaml"


def time_sampling(model: torch.nn.Module, batch: int, length: int, use_cache: bool, device: torch.device) -> float:
    """Seconds for one batch of `length` tokens per row."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    sample(model, batch, length, allow_eos=False, use_cache=use_cache)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--contexts", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--batch", type=int, nargs="+", default=[128])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = load_config(PRESET).generator
    print(f"# {platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    print("| context | batch | params | KV cache tok/s | recompute tok/s | speed-up | peak memory |")
    print("|---|---|---|---|---|---|---|")
    for context in args.contexts:
        model = build_generator(cfg, vocab_size=30, max_length=context).to(device).eval()
        if args.dtype == "bfloat16":
            model = model.to(torch.bfloat16)
        for batch in args.batch:
            time_sampling(model, batch, 4, True, device)  # warm-up
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            cached, full = [], []
            for _ in range(args.repeats):  # alternate, so drift hits both alike
                cached.append(time_sampling(model, batch, context, True, device))
                full.append(time_sampling(model, batch, context, False, device))
            tokens = batch * context
            fast, slow = tokens / min(cached), tokens / min(full)
            memory = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB" if device.type == "cuda" else "-"
            print(f"| {context} | {batch} | {count_parameters(model):,} | {fast:,.0f} | {slow:,.0f} | "
                  f"{fast / slow:.1f}x | {memory} |")


if __name__ == "__main__":
    main()
