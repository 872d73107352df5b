"""``gan-lightning translate``'s work: a folder of source-domain images through a translation checkpoint into a
folder of translations (same file names).

Images are decoded as the datamodules decode them (resized to the model's sample size, its channel count), turned
into data space [-1, 1], translated in batches by the model's ``translate`` and written as images in [0, 1], each
through a temporary file renamed into place (an interrupted run leaves no partial image). ``--out`` may not be the
input folder, lie inside it, or hold an input image or the checkpoint (``gan_lightning.outputs``). Messages name the
command's options (``--batch-size``, ``--out``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from gan_lightning.errors import GanLightningError


def translate_folder(checkpoint: str | Path, input_dir: str | Path, out: str | Path, direction: str | None = None,
                     batch_size: int = 8) -> tuple[int, str, Path]:
    """Translate every image of ``input_dir`` into ``out``; returns (images written, direction, out folder).
    ``direction`` None: the one the model learned (pix2pix), else AtoB."""
    import torch
    from tqdm import tqdm

    from datamodules.image_folder import Preprocess, decode_image, image_files
    from gan_lightning.data_io import uint8_to_unit_range
    from gan_lightning.loading import load_model
    from gan_lightning.models.translation import ImageTranslationModel
    from gan_lightning.outputs import check_output_folder, save_image_file

    if batch_size < 1:
        raise GanLightningError(f"--batch-size must be >= 1, got {batch_size}")
    files = image_files(Path(input_dir))
    check_output_folder(out, "--out", input_dir, "--input", files, {checkpoint: "the checkpoint"})
    model = load_model(checkpoint)
    if not isinstance(model, ImageTranslationModel):
        raise GanLightningError(f"{checkpoint}: model {model.registry_name} does not translate images")
    preprocess = Preprocess(model.sample_shape[-1], model.sample_shape[0])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    direction = direction or getattr(model, "direction", "AtoB")  # pix2pix learned one; cyclegan has both
    for start in tqdm(range(0, len(files), batch_size), desc=f"translating {direction}", unit="batch",
                      file=sys.stderr, disable=None):
        batch = files[start : start + batch_size]
        images = torch.stack([torch.tensor(decode_image(path, preprocess)) for path in batch])
        translated = model.translate(uint8_to_unit_range(images), direction)
        for path, image in zip(batch, translated, strict=True):
            save_image_file(image.float().cpu().add(1.0).div(2.0).clamp(0.0, 1.0), out / path.name)
    return len(files), direction, out
