"""Relays the events of ``python -m backend batch --events`` to Processing feedback, scene by scene.

Each scene's start, tiles, end (written or skipped) and failure become log lines; the scenes done and the tiles of
those still running make one progress bar. The relay keeps which scenes started (their partial outputs are removed
on cancel) and which failed, with their reasons, for the algorithm's last sentence.
"""

from __future__ import annotations

from qgis.core import QgsProcessingFeedback

from ..backend import protocol
from .backend_process import EventRelay


class BatchRelay(EventRelay):
    """Turns the batch command's events into feedback: each scene's start, end and failure; one progress bar."""

    def __init__(self, feedback: QgsProcessingFeedback, total: int) -> None:
        """Relay to ``feedback``; ``total`` is the scenes expected until the backend counts them."""
        super().__init__(feedback)
        self.total = total
        self.done = 0
        self.failed: dict[str, str] = {}
        self.started: list[str] = []  # the scenes' output names, as the backend names them
        self._scene_parts: dict[str, float] = {}

    def _handle(self, line: str) -> None:
        event = protocol.decode_event(line)
        if event is None:
            self._feedback.pushConsoleInfo(line)
            return
        scene = event.get("scene")
        if scene is None:
            self._overall(event)
        else:
            self._scene(str(scene), event)

    def _overall(self, event: protocol.Event) -> None:
        feedback = self._feedback
        if event.kind == "progress" and event.get("unit") == "scenes":
            self.done, self.total = int(event.get("done", 0)), int(event.get("total", 0) or self.total)
            feedback.pushInfo(f"Scenes: {self.done} of {self.total} done")
            self._progress()
        elif event.kind == "log":
            self.log(event)
        elif event.kind == "finished":
            self.finished = self.answer = event
        elif event.kind == "error":
            self.error = self.answer = event
            for failure in event.get("failed") or []:
                if isinstance(failure, dict) and failure.get("scene") not in self.failed:
                    self.failed[str(failure.get("scene"))] = str(failure.get("message", ""))

    def _scene(self, scene: str, event: protocol.Event) -> None:
        feedback = self._feedback
        if event.kind == "started":
            self.started.append(scene)
            feedback.pushInfo(f"{scene}: started ({event.get('tiles', '?')} tiles on {event.get('device', '?')})")
        elif event.kind == "progress" and not event.get("phase"):
            total = float(event.get("total") or 0)
            if total:
                self._scene_parts[scene] = float(event.get("done", 0)) / total
                feedback.setProgressText(f"{scene}: {event.get('done')}/{event.get('total')} tiles")
                self._progress()
        elif event.kind == "log":
            self.log(event, f"{scene}: ")
        elif event.kind == "finished":
            self._scene_parts.pop(scene, None)
            if event.get("skipped"):
                feedback.pushInfo(f"{scene}: already complete, skipped")
            else:
                feedback.pushInfo(f"{scene}: written ({event.get('output')})")
        elif event.kind in ("error", "cancelled"):
            self._scene_parts.pop(scene, None)
            message = str(event.get("message") or event.kind)
            self.failed[scene] = message
            feedback.reportError(f"{scene} failed: {message}", False)

    def _progress(self) -> None:
        if self.total:
            done = self.done + sum(self._scene_parts.values())
            self._feedback.setProgress(min(100.0, 100.0 * done / self.total))
