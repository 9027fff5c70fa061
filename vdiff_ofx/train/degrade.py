"""Synthetic noise models for training the denoiser (torch, batched, seeded).

Why: real camera noise is roughly Gaussian plus a signal-dependent (Poisson) part, and often has
low-frequency colour (chroma) blotches. We mix these and always report the *effective* noise std
per patch as the strength input, so "sigma" means the same thing to the net whatever the model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SIGMA_MAX = 55.0 / 255.0


def _chroma_noise(shape: torch.Size, gen: torch.Generator) -> torch.Tensor:
    """Unit-std noise: luma white noise plus smooth (2x2-block, blurred) colour-difference noise."""
    n, _, h, w = shape
    luma = torch.randn((n, 1, h, w), generator=gen)
    chroma = torch.randn((n, 3, (h + 1) // 2, (w + 1) // 2), generator=gen)
    chroma = F.interpolate(chroma, size=(h, w), mode="bilinear", align_corners=False)
    chroma = chroma - chroma.mean(dim=1, keepdim=True)  # colour-only component
    noise = 0.6 * luma + chroma
    return noise / noise.flatten(1).std(dim=1).view(n, 1, 1, 1).clamp_min(1e-6)


def add_noise(
    clean: torch.Tensor,
    gen: torch.Generator,
    sigma_max: float = SIGMA_MAX,
    p_poisson: float = 0.2,
    p_chroma: float = 0.15,
    p_zero: float = 0.03,
    sigma: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (noisy clipped to 0..1, sigma N x 1 x 1 x 1 as effective std on the 0..1 scale).

    Per patch: sigma ~ U[0, sigma_max] (a few exactly 0 so strength 0 is an identity) unless ``sigma`` fixes it,
    then one of AWGN, Poisson-Gaussian (variance a*x + b with mean variance sigma^2), or chroma noise.
    """
    n = clean.shape[0]
    if sigma is None:
        sigma = torch.rand((n, 1, 1, 1), generator=gen) * sigma_max
        sigma = torch.where(torch.rand((n, 1, 1, 1), generator=gen) < p_zero, torch.zeros_like(sigma), sigma)
    else:
        sigma = sigma.reshape(-1, 1, 1, 1).expand(n, 1, 1, 1).to(clean.dtype)
    kind = torch.rand((n, 1, 1, 1), generator=gen)
    white = torch.randn(clean.shape, generator=gen)
    # Poisson-Gaussian: share f of the variance is signal-dependent, scaled so mean variance = sigma^2.
    f = 0.5 + 0.5 * torch.rand((n, 1, 1, 1), generator=gen)
    mean_x = clean.mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    var = sigma**2 * (f * clean / mean_x + (1 - f))
    pg = torch.sqrt(var) * white
    chroma = sigma * _chroma_noise(clean.shape, gen)
    awgn = sigma * white
    noise = torch.where(kind < p_poisson, pg, torch.where(kind < p_poisson + p_chroma, chroma, awgn))
    return (clean + noise).clamp(0.0, 1.0), sigma
