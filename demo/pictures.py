"""How the course's Streamlit apps show a picture: a (3, H, W) tensor in [0, 1], enlarged without smoothing."""

from __future__ import annotations

import torch


def picture(image: torch.Tensor, scale: int = 3):
    """A (3, H, W) tensor in [0, 1] as an upscaled uint8 array for st.image."""
    big = torch.nn.functional.interpolate(image[None], scale_factor=scale, mode="nearest")[0]
    return (big.clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
