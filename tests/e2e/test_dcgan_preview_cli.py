"""``bench augment-preview --out`` in a subprocess: a folder gets the PNG inside, a trailing
slash names a folder that is made."""

from __future__ import annotations


def test_preview_out_folder_gets_the_png_inside(tiny_npz, tmp_path, run_bench):
    name = tiny_npz(task="binary-class")
    folder = tmp_path / "previews"
    folder.mkdir()
    r = run_bench("augment-preview", "--dataset", name, "--augment", "simple", "--out", folder)
    assert r.returncode == 0, r.stderr
    png = folder / f"augment_preview_{name.rsplit('/', 1)[1][:-4]}_simple.png"
    assert r.stdout.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a trailing slash names a folder that is made
    r = run_bench("augment-preview", "--dataset", name, "--augment", "none",
                  "--out", f"{tmp_path / 'new'}/")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / "new").iterdir()] == [png.name.replace("simple", "none")]
