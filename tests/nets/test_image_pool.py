"""The image pool of past fakes: fill, swap with the stated probability, and resume exactly."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.nets.layers import ImagePool


def images(start: int, n: int) -> torch.Tensor:
    """n one-pixel "images" whose value names them: start, start + 1, ..."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1)


def test_pool_fills_then_swaps_by_its_own_draws() -> None:
    pool = ImagePool(size=3, swap_prob=0.5, seed=7)
    assert pool.query(images(0, 3)).flatten().tolist() == [0, 1, 2]  # filling: passed through, stored
    # Replay the pool's generator by hand: per image, swap if rand < 0.5, then a random slot.
    replay, stored, expected = torch.Generator().manual_seed(7), [0.0, 1.0, 2.0], []
    for value in [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]:
        if float(torch.rand((), generator=replay)) < 0.5:
            slot = int(torch.randint(3, (), generator=replay))
            expected.append(stored[slot])
            stored[slot] = value
        else:
            expected.append(value)
    assert pool.query(images(3, 6)).flatten().tolist() == expected
    assert [float(i) for i in pool.images] == stored
    assert expected != [3, 4, 5, 6, 7, 8]  # some old fakes came back


def test_swap_probability_over_many_queries() -> None:
    pool = ImagePool(size=50, swap_prob=0.5, seed=0)
    pool.query(images(0, 50))
    fresh = images(1000, 4000)
    swapped = float((pool.query(fresh) != fresh).float().mean())  # a stored image came back in its place
    assert swapped == pytest.approx(0.5, abs=0.03)


def test_pool_state_resumes_exactly() -> None:
    pool = ImagePool(size=4, seed=3)
    for start in range(0, 40, 5):
        pool.query(images(start, 5))
    restored = ImagePool(size=4, seed=99)  # a different seed: the state must override it
    restored.load_state_dict(pool.state_dict())
    for start in range(40, 80, 5):
        assert torch.equal(pool.query(images(start, 5)), restored.query(images(start, 5)))


def test_size_zero_passes_fakes_through_and_bad_settings_fail() -> None:
    fakes = images(0, 4)
    assert torch.equal(ImagePool(size=0).query(fakes), fakes)
    with pytest.raises(ValueError, match="swap_prob"):
        ImagePool(size=5, swap_prob=1.5)
