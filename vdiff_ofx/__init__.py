"""vdiff: video enhancement engine (denoise, de-block, upscale) with adapters for Resolve, VapourSynth and pipes.

Frames inside vdiff are one type everywhere: ``numpy.float32`` arrays shaped ``H x W x 3`` (RGB, or ``H x W x 4``
RGBA where alpha is carried), nominal range 0..1 in the source's own transfer (no linearisation). The source's
pixel format, bit depth and colour tags travel beside the frames in :class:`vdiff_ofx.io.probe.VideoInfo` so the
encoder can restore them.
"""

__version__ = "0.1.0"
