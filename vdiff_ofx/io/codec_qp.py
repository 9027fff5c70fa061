"""The quantiser an H.264, H.265, VP9 or AV1 stream was coded with: H.264's and VP9's from FFmpeg's per-frame
encoding parameters, H.265's from the slice headers (io.hevc_qp) and AV1's from the frame headers (io.av1_qp), as
FFmpeg's decoders for those export no table.

Why: x264's in-loop deblocking filter removes the block edges a picture-based blockiness measure looks for, so a
delivery file at CRF 40 measures as clean (blockiness 0.96-1.01) while its macroblock QP says exactly how coarsely
it was quantised. FFmpeg exports that table (``export_side_data=venc_params``, AV_FRAME_DATA_VIDEO_ENC_PARAMS) for
H.264; PyAV hands it over as raw bytes, laid out as libavutil/video_enc_params.h's structs.
"""

from __future__ import annotations

import ctypes
from collections import deque

import av
import numpy as np

from .av1_qp import Av1Qp
from .hevc_qp import HevcQp
from .streams import side_data

# Decoders whose QP table this module reads, each on its own scale (analysis.clip.HEAVY_QP has a threshold per
# codec): H.264's QP 0-51 (AV_VIDEO_ENC_PARAMS_H264), VP9's quantiser index 0-255 (AV_VIDEO_ENC_PARAMS_VP9, the
# frame's base_q_idx plus each segment's delta). MPEG-2 / MPEG-4 Part 2 export qscale (type MPEG2) and need no table:
# with no in-loop filter their blocks show, and the picture's blockiness finds them (MPEG-2 of the held-out clip at
# qscale 4 / 8 / 16 / 24: 1.12 / 1.26 / 1.45 / 1.48, so `deblock` from 16). FFmpeg's HEVC decoder exports none: its
# slice headers are read instead (QpReader), as are AV1's frame headers (base_q_idx, 0-255) for libdav1d.
QP_CODECS = {"h264": 1, "vp9": 0}  # decoder name: the enum AVVideoEncParamsType its table carries
HEADER_READERS = {"hevc": HevcQp, "libdav1d": Av1Qp, "av1": Av1Qp}  # decoder name: its packets' QP reader


class _Params(ctypes.Structure):
    """AVVideoEncParams (native layout: its size_t fields move with the platform's word size)."""

    _fields_ = [("nb_blocks", ctypes.c_uint), ("blocks_offset", ctypes.c_size_t), ("block_size", ctypes.c_size_t),
                ("type", ctypes.c_int), ("qp", ctypes.c_int32), ("delta_qp", (ctypes.c_int32 * 2) * 4)]


_BLOCK_FIELDS = 5  # AVVideoBlockParams: int src_x, src_y, w, h; int32_t delta_qp


def export_qp(stream: av.video.stream.VideoStream) -> bool:
    """Ask ``stream``'s decoder (before its first packet) to attach its QP table to each frame; False where this
    module cannot read that codec's table."""
    if stream.codec_context.name not in QP_CODECS:
        return False
    stream.codec_context.options = {**stream.codec_context.options, "export_side_data": "venc_params"}
    return True


def frame_qp(frame: av.VideoFrame, codec: str = "h264") -> float | None:
    """Mean QP over the frame's blocks, area-weighted, on the 8-bit scale (None: no table of ``codec``'s on it).

    A high-bit-depth H.264 stream's table counts QP' = QP + 6 x (bit depth - 8) (QpBdOffset): a 10-bit x264 file at
    CRF 18 reads ~37 where the 8-bit one reads ~24, so the offset is taken off and one threshold serves both. (VP9's
    index is the same at every depth: its step tables scale with it.)
    """
    for sd in side_data(frame):
        if sd.type.name == "VIDEO_ENC_PARAMS":
            qp = parse_qp(bytes(sd), QP_CODECS.get(codec, -1))
            if qp is None or codec != "h264":
                return qp
            bits = frame.format.components[0].bits if frame.format.components else 8
            return qp - 6 * max(bits - 8, 0)
    return None


def parse_qp(buf: bytes, kind: int = QP_CODECS["h264"]) -> float | None:
    """Mean QP of one AVVideoEncParams buffer of type ``kind``: the frame's base QP plus each block's delta, weighted
    by block area."""
    if len(buf) < ctypes.sizeof(_Params):
        return None
    p = _Params.from_buffer_copy(buf)
    if p.type != kind:
        return None
    if p.nb_blocks == 0:
        return float(p.qp)
    stride = p.block_size // 4
    end = p.blocks_offset + p.nb_blocks * p.block_size
    if stride < _BLOCK_FIELDS or p.block_size % 4 or end > len(buf):
        return None
    blocks = np.frombuffer(buf, np.int32, p.nb_blocks * stride, p.blocks_offset).reshape(-1, stride)
    area = blocks[:, 2].astype(np.float64) * blocks[:, 3]
    if area.sum() <= 0:
        return None
    return float(p.qp + np.average(blocks[:, 4], weights=area))


class QpReader:
    """Each decoded frame's mean QP on its codec's scale, from wherever ``stream``'s codec keeps it: H.264's and VP9's
    table on the frame, H.265's slice and AV1's frame headers in the packet (matched to its frame by pts; in decode
    order where packets carry none). Feed it every packet before decoding it, then ask per frame; None where the
    codec gives no QP."""

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        cc = stream.codec_context
        self.codec = cc.name
        self.table = export_qp(stream)
        reader = HEADER_READERS.get(cc.name)
        self.headers = reader.from_extradata(cc.extradata) if reader is not None else None
        self.by_pts: dict[int, float | None] = {}
        self.in_order: deque[float | None] = deque()

    @property
    def reads_packets(self) -> bool:
        return self.headers is not None

    def packet(self, packet: av.Packet) -> None:
        if self.headers is None or not packet.size:
            return
        qp = self.headers.packet_qp(bytes(packet))
        if packet.pts is None:
            self.in_order.append(qp)
        else:
            self.by_pts[packet.pts] = qp

    def frame(self, frame: av.VideoFrame) -> float | None:
        if self.headers is None:
            return frame_qp(frame, self.codec) if self.table else None
        if frame.pts is not None and frame.pts in self.by_pts:
            return self.by_pts.pop(frame.pts)
        if self.in_order:
            return self.in_order.popleft()
        if frame.pts is None and self.by_pts:  # frames without timestamps come out in presentation order
            return self.by_pts.pop(min(self.by_pts))
        return None
