"""The help texts' shared paragraphs: the NFE trade-off, keeping clear pixels, the advanced settings, the backend.

Each algorithm writes what is its own (what it does, its inputs and bands, the paper to cite) and adds these, so
the same setting is explained the same way everywhere.
"""

from __future__ import annotations

NFE_TRADE_OFF = (
    "<li><b>NFE</b> (network function evaluations): the number of sampler steps. <i>Fewer steps</i> give an image "
    "closer to the average of what could lie under the cloud: smoother, safe, fast. <i>More steps</i> give a "
    "sharper image, with a risk of invented detail (plausible texture that is not on the ground), at a cost in "
    "time proportional to the steps. Leave it empty to use the model's own default.</li>"
)

MODEL = (
    "<li><b>Model</b>: a shipped model's name or a <i>.safetensors</i> weights file. The model knows its own bands, "
    "scaling and tile size; the <i>Cloud removal</i> panel shows its card (bands, training data, metrics).</li>"
)

KEEP_CLEAR_PIXELS = (
    "<li><b>Keep clear pixels</b> (advanced, on by default): the input is kept bit for bit where the cloud mask "
    "finds no cloud (s2cloudless probability below the <b>cloud threshold</b>, 0.4 by default; for RGB images, the "
    "probability of a small detector learnt from RICE2's cloudy and clear pairs) and the model's output is used only "
    "under clouds, feathered at the mask's edge. On a clear scene the output equals the input. The cloud fraction "
    "is reported in the log and as the <i>CLOUD_FRACTION</i> output. "
    "Turn it off to let the model rewrite every pixel.</li>"
)

KEEP_CLEAR = KEEP_CLEAR_PIXELS + (
    "<li><b>Cloud mask</b> and <b>change</b> outputs (optional): the cloud mask used (1 cloud, 0 clear) and how much "
    "each pixel changed, to see where the model worked.</li>"
)

ADVANCED = (
    "<li>Advanced: the device (GPU when available), the runtime (PyTorch, or ONNX Runtime), the tile size (0 uses "
    "the model's) and the overlap in pixels between tiles, blended so that no seams show. A smaller tile needs less "
    "memory; the defaults come from the <i>Cloud removal</i> panel.</li>"
    "<li><b>Learn from this scene first</b> (advanced, 0 = off): fine-tunes the model for this many steps on the "
    "scene's own clear areas, under clouds copied from the scene's own cloudy areas, before the run. It fits the "
    "model to this sensor, season and ground; 50 to 100 steps take a few minutes on a CPU. Needs some clear area "
    "(at least a 96 x 96 pixel window).</li>"
)

BACKEND = (
    "<p>The work runs in the plugin's own backend environment, never inside QGIS. If it is missing, open the "
    "<i>Cloud removal</i> panel (Plugins menu) and click <i>Set up backend…</i>. Cancel stops a run and leaves no "
    "output file.</p>"
)


def build_help(summary: str, inputs: list[str], settings: list[str], citation: str = "") -> str:
    """Return one help string: QGIS turns every newline into a line break, so the HTML is joined into one line.

    Args:
        summary: what the algorithm does, one paragraph (HTML).
        inputs: one ``<li>`` per input (HTML).
        settings: one ``<li>`` per setting (HTML); the shared ones above are there to be included.
        citation: the paper to cite (HTML, without ``<p>``), or empty.
    """
    html = (
        f"<p>{summary}</p><h3>Inputs</h3><ul>{''.join(inputs)}</ul><h3>Settings</h3><ul>{''.join(settings)}</ul>"
        f"{BACKEND}" + (f"<p>Please cite: {citation}</p>" if citation else "")
    )
    return " ".join(html.split())
