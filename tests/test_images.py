"""Decoding pictures as they really come: formats, modes, orientation, bad input."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artvec.images import (
    CorruptImage,
    EmptyImage,
    ImageError,
    ImageNotFound,
    ImageTooLarge,
    UnsupportedImage,
    iter_image_files,
    load_image,
)


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.astronaut()).resize((96, 64))


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _assert_rgb(img: Image.Image, size=(96, 64)):
    assert img.mode == "RGB"
    assert img.size == size
    arr = np.asarray(img)
    assert arr.dtype == np.uint8 and arr.shape == (size[1], size[0], 3)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP", "GIF", "BMP"])
def test_formats_decode_to_rgb(picture, fmt, tmp_path):
    path = tmp_path / f"p.{fmt.lower()}"
    picture.save(path, fmt)
    _assert_rgb(load_image(path))
    _assert_rgb(load_image(path.read_bytes(), "bytes"))


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1", "I", "F"])
def test_modes_decode_to_rgb(picture, mode, tmp_path):
    img = picture.convert(mode) if mode not in ("LA", "RGBA") else picture.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    path = tmp_path / f"p.{fmt.lower()}"
    img.save(path, fmt)
    _assert_rgb(load_image(path))


def test_cmyk_jpeg(picture):
    _assert_rgb(load_image(_bytes(picture.convert("CMYK"), "JPEG")))


def test_transparency_composited_on_white():
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent red
    out = np.asarray(load_image(_bytes(rgba, "PNG")))
    assert (out == 255).all()
    la = Image.new("LA", (10, 10), (0, 128))  # half-transparent black
    out = np.asarray(load_image(_bytes(la, "PNG")))
    assert 120 <= out.mean() <= 135
    p = Image.new("P", (10, 10), 0)
    p.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    p.info["transparency"] = 0
    out = np.asarray(load_image(_bytes(p, "PNG", transparency=0)))
    assert (out == 255).all()


def test_sixteen_bit_png_scaled_not_clipped():
    arr = np.linspace(0, 65535, 64 * 32).reshape(32, 64).astype(np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    out = load_image(_bytes(img, "PNG"))
    _assert_rgb(out, (64, 32))
    a = np.asarray(out)[..., 0].astype(int)
    assert a.min() == 0 and a.max() == 255 and 100 < a.mean() < 155


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = np.asarray(load_image(path))
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 50


def test_animated_webp_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 20), c) for c in ((0, 0, 255), (255, 0, 0))]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, lossless=True)
    out = np.asarray(load_image(path))
    assert out[..., 2].mean() > 200 and out[..., 0].mean() < 50


def test_exif_orientation_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    out = load_image(path)
    assert out.size == (20, 40)
    a = np.asarray(out).mean(axis=(1, 2))
    assert a[:20].mean() > 200 and a[20:].mean() < 50  # white half is now on top


def test_target_size_and_jpeg_draft(picture, tmp_path):
    big = picture.resize((3000, 2000))
    path = tmp_path / "big.jpg"
    big.save(path, "JPEG", quality=85)
    out = load_image(path, target_size=128)
    _assert_rgb(out, (128, 128))
    out = load_image(path, target_size=128, square=False)
    assert max(out.size) == 128 and out.size == (128, 85)
    # draft really decodes at reduced size
    with Image.open(path) as im:
        im.draft("RGB", (128, 128))
        assert im.size[0] < 3000


def _assert_one_line(err: ImageError, name: str):
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    assert text.startswith(f"{name}: ") and err.name == name and err.reason


def test_missing_file(tmp_path):
    p = tmp_path / "nope.jpg"
    with pytest.raises(ImageNotFound) as e:
        load_image(p)
    _assert_one_line(e.value, str(p))


def test_a_missing_relative_name_without_an_image_root_says_so(tmp_path, monkeypatch):
    from artvec.sources import SourceOptions, read_bytes

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageNotFound) as e:
        read_bytes("nope.png", SourceOptions())
    _assert_one_line(e.value, "nope.png")
    assert str(e.value).endswith("no such file: nope.png; relative locations are read under --image-root "
                                 "(catalogue.image_root), which is not set")
    for location, root in [("nope.png", str(tmp_path)), (str(tmp_path / "nope.png"), None)]:
        with pytest.raises(ImageNotFound) as e:
            read_bytes(location, SourceOptions(image_root=root))
        assert str(e.value).endswith(f"no such file: {tmp_path / 'nope.png'}")     # looked for there: no hint


def test_zero_byte_file_and_bytes(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(EmptyImage) as e:
        load_image(p)
    _assert_one_line(e.value, str(p))
    with pytest.raises(EmptyImage):
        load_image(b"", "blob")


def test_truncated_jpeg(picture, tmp_path):
    data = _bytes(picture.resize((400, 300)), "JPEG", quality=90)
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptImage) as e:
        load_image(p)
    _assert_one_line(e.value, str(p))
    assert "truncated" in e.value.reason


def test_corrupt_body(picture, tmp_path):
    data = bytearray(_bytes(picture, "PNG"))
    data[60:400] = b"\x00" * 340
    p = tmp_path / "bad.png"
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptImage) as e:
        load_image(p)
    _assert_one_line(e.value, str(p))


def test_text_file(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n")
    with pytest.raises(UnsupportedImage) as e:
        load_image(p)
    _assert_one_line(e.value, str(p))


def test_folder_is_not_a_picture(tmp_path):
    with pytest.raises(UnsupportedImage):
        load_image(tmp_path)


def test_bomb_limit_checked_before_decoding(tmp_path):
    p = tmp_path / "huge.png"
    Image.new("L", (4000, 3000)).save(p)  # 12 Mpx, tiny file
    with pytest.raises(ImageTooLarge) as e:
        load_image(p, max_pixels=10_000_000)
    _assert_one_line(e.value, str(p))
    assert "12,000,000" in e.value.reason
    assert load_image(p, max_pixels=12_000_000, target_size=64).size == (64, 64)


def test_errors_are_typed_and_picklable():
    import pickle

    err = CorruptImage("a.jpg", "broken\nsecond line")
    assert str(err) == "a.jpg: broken second line"
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, CorruptImage) and str(again) == str(err)
    assert issubclass(ImageTooLarge, ImageError)


def test_iter_image_files(tmp_path, picture):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for rel in ("b/2.PNG", "a.jpg", "b/1.webp", "z.tif", ".hidden/x.jpg"):
        picture.save(tmp_path / rel)
    (tmp_path / "notes.txt").write_text("x")
    files = iter_image_files([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.jpg", "b/1.webp", "b/2.PNG", "z.tif"]
    # explicit files and missing paths are kept, in the order given
    out = iter_image_files([tmp_path / "notes.txt", tmp_path / "missing.jpg", tmp_path / "b"])
    assert [f.name for f in out] == ["notes.txt", "missing.jpg", "1.webp", "2.PNG"]


def test_importing_images_and_config_does_not_import_torch():
    code = (
        "import sys, artvec.images, artvec.embedding as e; "
        "c = e.DEFAULT_CONFIG; c.dim; c.config_id; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
