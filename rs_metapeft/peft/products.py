"""Products the PEFT modules' backward passes share, in the layouts a CPU BLAS runs fastest."""

from __future__ import annotations

import torch

__all__ = ["token_product"]


def token_product(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``left.T @ right`` for ``(tokens, r)`` and ``(tokens, d)``: a sum over the tokens.

    The weight gradients of the PEFT modules' narrow factors are such sums (``r`` is a LoRA rank
    or an adapter's bottleneck).

    A CPU BLAS runs such a product (few output rows, a long reduction) on one thread. On the
    CPU, the tokens are cut into one chunk per thread and the chunks' products, run as one
    batched product, are summed, which halves its time on two threads.
    """
    chunks = torch.get_num_threads() if left.device.type == "cpu" else 1
    tokens = left.shape[0] - left.shape[0] % chunks
    if chunks < 2 or tokens < 2 * chunks:
        return left.T @ right
    per_chunk = tokens // chunks
    product = torch.bmm(left[:tokens].view(chunks, per_chunk, -1).transpose(1, 2),
                        right[:tokens].view(chunks, per_chunk, -1)).sum(0)
    if tokens < left.shape[0]:  # the tokens left over after the last whole chunk
        product = product + left[tokens:].T @ right[tokens:]
    return product
