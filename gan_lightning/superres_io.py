"""``gan-lightning upscale`` and ``gan-lightning interpolate``: a super-resolution checkpoint applied to image files,
and ESRGAN's network interpolation between two checkpoints of one generator architecture.

``upscale`` reads each image at its own size (no resize; converted to the model's channel count), upscales it tile by
tile (``tile`` x ``tile`` LR tiles overlapping by ``overlap`` pixels, so a large photo fits in memory; see
``gan_lightning.superres_eval.upscale_tiled``) and writes it under the same file name in ``--out``, each through a
temporary file renamed into place. ``--out`` may not be the input folder, lie inside it, or hold an input image or
the checkpoint (``gan_lightning.outputs``).

``interpolate`` writes theta = (1 - alpha) x theta_A + alpha x theta_B for every floating-point weight and buffer of
the generator (ESRGAN: A the PSNR-oriented model, B the GAN one, alpha 0.8); the rest of the checkpoint (its model
config, discriminator, integer buffers) is A's, so the result upscales and evaluates as A's model would.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gan_lightning.errors import GanLightningError


def read_full_image(path: Path, channels: int) -> Any:
    """One image file at its own size as a C x H x W uint8 tensor; one line naming the file if it cannot be read."""
    import numpy as np
    import torch

    from datamodules.image_folder import read_image, to_8bit

    image = read_image(path)
    try:
        array = np.asarray(to_8bit(image).convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise GanLightningError(f"cannot read image {path} ({type(error).__name__})") from None
    return torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())


def _inputs(input_path: Path) -> list[Path]:
    from datamodules.image_folder import IMAGE_SUFFIXES, image_files

    if input_path.is_dir():
        return image_files(input_path)
    if not input_path.is_file():
        raise GanLightningError(f"--input {input_path} does not exist")
    if input_path.suffix.lower() not in IMAGE_SUFFIXES:
        raise GanLightningError(f"--input {input_path} is not an image ({'/'.join(IMAGE_SUFFIXES)})")
    return [input_path]


def upscale_images(checkpoint: str | Path, input_path: str | Path, out: str | Path, tile: int = 256,
                   overlap: int = 16) -> tuple[int, int, Path]:
    """Upscale an image file, or every image of a folder, into the folder ``out``; returns (images written, scale,
    out)."""
    import torch
    from tqdm import tqdm

    from gan_lightning.data_io import uint8_to_unit_range
    from gan_lightning.loading import load_model
    from gan_lightning.models.superres import SuperResolutionModel
    from gan_lightning.outputs import check_not_read, check_output_folder, save_image_file
    from gan_lightning.rundir import check_writable
    from gan_lightning.superres_eval import upscale_tiled

    if tile < 1:
        raise GanLightningError(f"--tile must be >= 1, got {tile}")
    if overlap < 0:
        raise GanLightningError(f"--overlap must be >= 0, got {overlap}")
    input_path, out = Path(input_path), Path(out)
    files = _inputs(input_path)
    if input_path.is_dir():
        check_output_folder(out, "--out", input_path, "--input", files, {checkpoint: "the checkpoint"})
    else:
        check_not_read([out / input_path.name], "--out", {input_path: "the input image", checkpoint: "the checkpoint"})
        check_writable(out, "--out")
    model = load_model(checkpoint)
    if not isinstance(model, SuperResolutionModel):
        raise GanLightningError(f"{checkpoint}: model {model.registry_name} is not a super-resolution model")
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    out.mkdir(parents=True, exist_ok=True)
    for path in tqdm(files, desc=f"upscaling x{model.scale}", unit="image", file=sys.stderr, disable=None):
        image = uint8_to_unit_range(read_full_image(path, model.sample_shape[0]))
        upscaled = upscale_tiled(model.upscale, image[None], model.scale, tile, overlap)[0]
        save_image_file(upscaled.float().cpu().add(1.0).div(2.0).clamp(0.0, 1.0), out / path.name)
    return len(files), model.scale, out


def interpolate_checkpoints(path_a: str | Path, path_b: str | Path, alpha: float, out: str | Path) -> str:
    """Write the generator interpolation of two checkpoints to ``out``; returns the architecture in words."""
    import torch

    from gan_lightning.checkpoints import load_checkpoint
    from gan_lightning.files import atomic_torch_save
    from gan_lightning.loading import load_model
    from gan_lightning.models.superres import SuperResolutionModel, generator_state, state_mismatch
    from gan_lightning.outputs import check_output_file

    if not 0.0 <= alpha <= 1.0:
        raise GanLightningError(f"--alpha must be in [0, 1], got {alpha}")
    check_output_file(out, "--out", {path_a: "CKPT_A", path_b: "CKPT_B"})
    model = load_model(path_a)  # one line if A is no usable checkpoint
    if not isinstance(model, SuperResolutionModel):
        raise GanLightningError(f"{path_a}: model {model.registry_name} is not a super-resolution model")
    checkpoint_a, checkpoint_b = load_checkpoint(path_a), load_checkpoint(path_b)
    state_a, state_b = generator_state(checkpoint_a), generator_state(checkpoint_b)
    problem = state_mismatch(state_a, state_b)
    if problem:
        raise GanLightningError(f"{path_b}: its generator is not the architecture of {path_a}'s "
                                f"({model.generator_signature()}): {problem}")
    state = dict(checkpoint_a["state_dict"])
    for key, a in state_a.items():
        if a.is_floating_point():  # weights and running statistics; integer counters stay A's
            state[f"generator.{key}"] = torch.lerp(a, state_b[key].to(a.dtype), alpha)
    atomic_torch_save({"hyper_parameters": checkpoint_a["hyper_parameters"], "state_dict": state,
                       "interpolation": {"a": str(path_a), "b": str(path_b), "alpha": alpha}}, out)
    return model.generator_signature()
