"""The GPU path, measured (issue 18): MLE and adversarial steps of a 50M-parameter transformer generator at batch
256 and context 128, float32 vs bfloat16 autocast, eager vs torch.compile, on whatever device it runs on.

    python benchmarks/gpu.py                       # on a GPU: the full table (a few minutes)
    python benchmarks/gpu.py --tiny --device cpu   # a seconds-long check of the script itself on CPU

Per configuration: MLE steps/s and tokens/s, adversarial steps/s (REINFORCE with per-step rewards: sample 128
tokens through the KV cache, score them with a 3-layer discriminator, one policy-gradient step, one D step),
generated tokens/s, peak memory, and model FLOP utilisation of the MLE step:

    FLOPs per MLE step = tokens * (6 * N + 12 * L * H * T)

with N the parameters of the matrices a token passes through (blocks and output head; the embedding lookup is
free), L layers, H the width, T the context: 6N for the forward and backward matmuls (2 + 4 per parameter), and
12 L H T for attention's scores and weighted sums (Kaplan et al. 2020 / PaLM appendix B). MFU = that / step time /
the device's dense peak (H100/H200 SXM: 989 TFLOP/s bf16 with TF32 495; other devices: --peak-tflops).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch
from langan_cli import REPO

from langan.algorithms import build_algorithm
from langan.config import load_config
from langan.data.batching import Batch
from langan.data.dataset import DataBundle, Split
from langan.data.tokenizers import OracleTokenizer
from langan.runs.loading import compile_networks, setup_torch
from langan.tokens import BOS

PEAK_TFLOPS = {"H100": {"bfloat16": 989.0, "float32": 494.5}, "H200": {"bfloat16": 989.0, "float32": 494.5}}
FULL = {"vocab": 8192, "hidden": 576, "layers": 12, "heads": 9, "batch": 256, "context": 128}
TINY = {"vocab": 64, "hidden": 32, "layers": 2, "heads": 2, "batch": 8, "context": 16}


def synthetic_data(vocab: int, context: int, rows: int = 512) -> DataBundle:
    """Random full-length rows (no EOS): every position of the context is computed, as in the issue's setting."""
    g = torch.Generator().manual_seed(0)
    tokens = torch.cat([torch.full((rows, 1), BOS), torch.randint(4, vocab, (rows, context), generator=g)], 1)
    split = Split("train", [str(i) for i in range(rows)], tokens)
    small = Split("valid", split.texts[:8], tokens[:8])
    return DataBundle(OracleTokenizer.of_size(vocab - 4), split, small, small, context)


def overrides(shape: dict[str, int], algorithm: str, dtype: str, compiled: bool, device: str) -> list[str]:
    h = shape["hidden"]
    return [f"algorithm={algorithm}", f"generator.hidden_size={h}", f"generator.intermediate_size={4 * h}",
            f"generator.num_layers={shape['layers']}", f"generator.num_heads={shape['heads']}",
            f"train.batch_size={shape['batch']}", f"data.max_length={shape['context']}", f"train.dtype={dtype}",
            f"train.compile={str(compiled).lower()}", f"train.device={device}", "train.pretrain_steps=0",
            "sampling.allow_eos=false", "disc.grad_accumulation=1", "optim.gen.warmup_steps=0"]


def matmul_parameters(gen: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in gen.named_parameters() if p.dim() == 2 and not n.startswith("embed."))


def time_steps(algo, batch: Batch, steps: int, device: torch.device) -> float:
    for _ in range(2):  # warm-up (and compilation)
        algo.step(batch)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        algo.step(batch)
    sync()
    return (time.perf_counter() - start) / steps


def measure(shape: dict[str, int], dtype: str, compiled: bool, device_name: str, steps: int, peak: float | None
            ) -> dict[str, float]:
    data = synthetic_data(shape["vocab"], shape["context"])
    batch = Batch(data.train.tokens[: shape["batch"]], torch.arange(shape["batch"]))
    out: dict[str, float] = {}
    for algorithm in ("mle", "reinforce"):
        cfg = load_config(REPO / "configs" / "names-reinforce.yaml", overrides(shape, algorithm, dtype, compiled,
                                                                              device_name))
        device = setup_torch(cfg)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        torch.manual_seed(0)
        algo = build_algorithm(cfg, data, device, 10_000)
        compile_networks(cfg, algo)
        seconds = time_steps(algo, batch, steps, device)
        tokens = shape["batch"] * shape["context"]
        if algorithm == "mle":
            n = matmul_parameters(algo.gen)
            flops = tokens * (6 * n + 12 * shape["layers"] * shape["hidden"] * shape["context"])
            out |= {"params": sum(p.numel() for p in algo.gen.parameters()), "mle_step_s": seconds,
                    "mle_tokens_per_s": tokens / seconds, "mle_tflops": flops / seconds / 1e12}
            if peak:
                out["mfu"] = flops / seconds / (peak * 1e12)
        else:
            out |= {"adv_step_s": seconds, "generated_tokens_per_s": tokens / seconds}
        if device.type == "cuda":
            out[f"{algorithm}_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        del algo
    out["adv_over_mle"] = out["adv_step_s"] / out["mle_step_s"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="a tiny model: checks the script in seconds")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--peak-tflops", type=float, help="the device's dense peak for the dtype measured")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "gpu.json"))
    args = p.parse_args()
    shape = TINY if args.tiny else FULL
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({torch.get_num_threads()} " \
        "threads)"
    print(f"device: {name}; torch {torch.__version__}; shape {shape}")
    rows = []
    for dtype in ("float32", "bfloat16"):
        for compiled in (False, True):
            peak = args.peak_tflops or next((v[dtype] for k, v in PEAK_TFLOPS.items() if k in name), None)
            with contextlib.suppress(KeyboardInterrupt):
                row = {"dtype": dtype, "compiled": compiled} | measure(shape, dtype, compiled, args.device,
                                                                      args.steps, peak)
                rows.append(row)
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"device": name, "torch": torch.__version__, "shape": shape,
                                          "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
