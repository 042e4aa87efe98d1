"""A folder of optical rasters as the batch command's scene list, and counting a list's scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_a_folder_becomes_a_scene_list_without_earlier_outputs(plugin_package: Any, tmp_path: Path) -> None:
    from cloud_removal.processing_provider.scene_list import count_rows, folder_scene_list

    for name in ("b.tif", "a.TIFF", "a_cloudfree.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    scenes = folder_scene_list(tmp_path, tmp_path / "scenes.csv")
    lines = scenes.read_text(encoding="utf-8").splitlines()
    assert lines == ["optical,sar,output", f"{tmp_path / 'a.TIFF'},,", f"{tmp_path / 'b.tif'},,"]
    assert count_rows(scenes) == 2
