"""The quantiser an AV1 stream was coded with, read from its frame headers.

Why: FFmpeg's AV1 decoder (libdav1d) exports no QP table, and AV1's deblocking, CDEF and loop restoration hide block
edges, so a heavily compressed AV1 delivery file measures as clean. Each frame header states its base quantiser
index (base_q_idx, 0-255, AV1 5.9.12), reached by parsing the sequence header and the frame header fields before it
(AV1 5.5, 5.9): no pixel decoding. Blocks may shift it (delta_q); base_q_idx is the level they vary around.

A temporal unit shows one frame: its own, or, with show_existing_frame, one decoded earlier (often a hidden
alt-ref), whose index the reader keeps per reference slot. Anything this parser does not follow (a missing sequence
header, a damaged header, a frame sized from a reference through short ref signalling) gives None, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .bits import BitReader as _Bits

_SEQUENCE_HEADER, _FRAME_HEADER, _FRAME = 1, 3, 6
_KEY, _INTER, _INTRA_ONLY, _SWITCH = 0, 1, 2, 3
_SELECT = 2  # SELECT_SCREEN_CONTENT_TOOLS / SELECT_INTEGER_MV
_REFS = 7  # REFS_PER_FRAME
_MAX_TILE_WIDTH, _MAX_TILE_AREA, _MAX_TILE_COLS, _MAX_TILE_ROWS = 4096, 4096 * 2304, 64, 64


def _tile_log2(block: int, target: int) -> int:
    k = 0
    while (block << k) < target:
        k += 1
    return k


@dataclass
class _Sequence:
    reduced: bool = False
    decoder_model: bool = False
    equal_picture_interval: bool = False
    removal_bits: int = 0
    presentation_bits: int = 0
    op_idc: list[int] = field(default_factory=list)
    op_decoder_model: list[bool] = field(default_factory=list)
    width_bits: int = 0
    height_bits: int = 0
    max_width: int = 0
    max_height: int = 0
    frame_id_bits: int = 0  # 0: no frame ids
    delta_frame_id_bits: int = 0
    sb128: bool = False
    order_hint_bits: int = 0
    ref_frame_mvs: bool = False
    screen_content: int = _SELECT
    integer_mv: int = _SELECT
    superres: bool = False


def _sequence_header(r: _Bits) -> _Sequence:
    s = _Sequence()
    r.f(3)  # seq_profile
    r.f(1)  # still_picture
    s.reduced = bool(r.f(1))
    if s.reduced:
        r.f(5)
        s.op_idc, s.op_decoder_model = [0], [False]
    else:
        if r.f(1):  # timing_info_present_flag
            r.f(64)
            s.equal_picture_interval = bool(r.f(1))
            if s.equal_picture_interval:
                r.uvlc()
            s.decoder_model = bool(r.f(1))
            if s.decoder_model:
                delay_bits = r.f(5) + 1
                r.f(32)
                s.removal_bits, s.presentation_bits = r.f(5) + 1, r.f(5) + 1
        display_delay = r.f(1)
        for _ in range(r.f(5) + 1):
            s.op_idc.append(r.f(12))
            if r.f(5) > 7:
                r.f(1)  # seq_tier
            present = s.decoder_model and bool(r.f(1))
            s.op_decoder_model.append(present)
            if present:
                r.f(2 * delay_bits + 1)
            if display_delay and r.f(1):
                r.f(4)
    s.width_bits, s.height_bits = r.f(4) + 1, r.f(4) + 1
    s.max_width, s.max_height = r.f(s.width_bits) + 1, r.f(s.height_bits) + 1
    if not s.reduced and r.f(1):  # frame_id_numbers_present_flag
        s.delta_frame_id_bits = r.f(4) + 2
        s.frame_id_bits = s.delta_frame_id_bits + r.f(3) + 1
    s.sb128 = bool(r.f(1))
    r.f(2)  # filter intra, intra edge filter
    if not s.reduced:
        r.f(4)  # inter-intra, masked compound, warped motion, dual filter
        order_hint = r.f(1)
        if order_hint:
            r.f(1)  # jnt_comp
            s.ref_frame_mvs = bool(r.f(1))
        s.screen_content = _SELECT if r.f(1) else r.f(1)
        if s.screen_content > 0:
            s.integer_mv = _SELECT if r.f(1) else r.f(1)
        if order_hint:
            s.order_hint_bits = r.f(3) + 1
    s.superres = bool(r.f(1))
    return s


@dataclass
class _Slot:
    """What a reference slot keeps that a later header depends on."""

    upscaled_width: int
    height: int
    frame_type: int
    q: int


class _Frame:
    """One frame header's parse, sized as frame_size / superres_params / compute_image_size say."""

    def __init__(self, r: _Bits, s: _Sequence) -> None:
        self.r, self.s = r, s
        self.override = False
        self.upscaled_width = self.width = self.height = 0

    def frame_size(self) -> None:
        r, s = self.r, self.s
        if self.override:
            self.width, self.height = r.f(s.width_bits) + 1, r.f(s.height_bits) + 1
        else:
            self.width, self.height = s.max_width, s.max_height
        self.superres_params()

    def superres_params(self) -> None:
        denom = 8
        if self.s.superres and self.r.f(1):
            denom = self.r.f(3) + 9
        self.upscaled_width = self.width
        self.width = (self.upscaled_width * 8 + denom // 2) // denom

    def render_size(self) -> None:
        if self.r.f(1):
            self.r.f(32)

    def tile_info(self) -> None:
        r, s = self.r, self.s
        mi_cols, mi_rows = 2 * ((self.width + 7) >> 3), 2 * ((self.height + 7) >> 3)
        shift = 5 if s.sb128 else 4
        sb_cols, sb_rows = (mi_cols + (1 << shift) - 1) >> shift, (mi_rows + (1 << shift) - 1) >> shift
        sb_size = shift + 2
        max_width_sb = _MAX_TILE_WIDTH >> sb_size
        max_area_sb = _MAX_TILE_AREA >> (2 * sb_size)
        min_cols_log2 = _tile_log2(max_width_sb, sb_cols)
        max_cols_log2 = _tile_log2(1, min(sb_cols, _MAX_TILE_COLS))
        max_rows_log2 = _tile_log2(1, min(sb_rows, _MAX_TILE_ROWS))
        min_log2 = max(min_cols_log2, _tile_log2(max_area_sb, sb_rows * sb_cols))
        if r.f(1):  # uniform_tile_spacing_flag
            cols_log2 = min_cols_log2
            while cols_log2 < max_cols_log2 and r.f(1):
                cols_log2 += 1
            rows_log2 = max(min_log2 - cols_log2, 0)
            while rows_log2 < max_rows_log2 and r.f(1):
                rows_log2 += 1
        else:
            start = widest = cols = 0
            while start < sb_cols:
                size = r.ns(min(sb_cols - start, max_width_sb)) + 1
                widest, start, cols = max(size, widest), start + size, cols + 1
            cols_log2 = _tile_log2(1, cols)
            area = (sb_rows * sb_cols) >> (min_log2 + 1) if min_log2 > 0 else sb_rows * sb_cols
            max_height_sb = max(area // widest, 1)
            start = rows = 0
            while start < sb_rows:
                start, rows = start + r.ns(min(sb_rows - start, max_height_sb)) + 1, rows + 1
            rows_log2 = _tile_log2(1, rows)
        if cols_log2 or rows_log2:
            r.f(cols_log2 + rows_log2 + 2)  # context_update_tile_id, tile_size_bytes_minus_1


@dataclass
class Av1Qp:
    """Reads each AV1 temporal unit's shown frame's base_q_idx; the sequence header comes from the stream's
    extradata (av1C) and from the packets."""

    seq: _Sequence | None = None
    slots: list[_Slot | None] = field(default_factory=lambda: [None] * 8)

    @classmethod
    def from_extradata(cls, extradata: bytes | None) -> "Av1Qp":
        reader = cls()
        data = bytes(extradata or b"")
        if len(data) >= 4 and data[0] & 0x80:  # AV1CodecConfigurationRecord: 4 bytes, then configOBUs
            data = data[4:]
        try:
            reader._obus(data)
        except (ValueError, IndexError):
            pass
        return reader

    def _obus(self, data: bytes) -> list[tuple[bool, int | None]]:
        """Each frame header's (shown, base_q_idx) in the OBUs of ``data``; updates the sequence and slots."""
        frames: list[tuple[bool, int | None]] = []
        pos = 0
        while pos < len(data):
            header = data[pos]
            kind, extension, has_size = (header >> 3) & 15, header >> 2 & 1, header >> 1 & 1
            if header & 0x80:
                raise ValueError("forbidden bit set")
            temporal = spatial = 0
            pos += 1
            if extension:
                temporal, spatial = data[pos] >> 5, (data[pos] >> 3) & 3
                pos += 1
            size = len(data) - pos
            if has_size:
                size = shift = 0
                while True:
                    byte = data[pos]
                    pos += 1
                    size |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80 or shift >= 56:
                        break
            payload = data[pos:pos + size]
            pos += size
            if len(payload) < size:
                raise ValueError("OBU cut off")
            if kind == _SEQUENCE_HEADER:
                self.seq = _sequence_header(_Bits(payload))
            elif kind in (_FRAME_HEADER, _FRAME) and spatial == 0:
                frames.append(self._frame_header(_Bits(payload[:512]), temporal, spatial))
        return frames

    def packet_qp(self, data: bytes) -> float | None:
        """The base_q_idx of the frame this temporal unit shows (None: none shown, or a header not followed)."""
        try:
            shown = [q for visible, q in self._obus(bytes(data)) if visible]
        except (ValueError, IndexError):
            self.slots = [None] * 8  # what this unit stored is unknown: no slot is read until a key frame
            return None
        return float(shown[-1]) if shown and shown[-1] is not None else None

    def _frame_header(self, r: _Bits, temporal: int, spatial: int) -> tuple[bool, int | None]:
        s = self.seq
        if s is None:
            raise ValueError("frame header before any sequence header")
        if s.reduced:
            show_existing, frame_type, show_frame = False, _KEY, True
        else:
            show_existing = bool(r.f(1))
            if show_existing:
                slot = self.slots[r.f(3)]
                if slot is None:
                    raise ValueError("shows an empty reference slot")
                if slot.frame_type == _KEY:  # a shown key frame refreshes every slot
                    self.slots = [slot] * 8
                return True, slot.q
            frame_type, show_frame = r.f(2), bool(r.f(1))
            if show_frame and s.decoder_model and not s.equal_picture_interval:
                r.f(s.presentation_bits)
            if not show_frame:
                r.f(1)  # showable_frame
        intra = frame_type in (_KEY, _INTRA_ONLY)
        if s.reduced or frame_type == _SWITCH or (frame_type == _KEY and show_frame):
            error_resilient = True
        else:
            error_resilient = bool(r.f(1))
        disable_cdf_update = r.f(1)
        screen_content = r.f(1) if s.screen_content == _SELECT else s.screen_content
        force_integer_mv = (r.f(1) if s.integer_mv == _SELECT else s.integer_mv) if screen_content else 0
        if intra:
            force_integer_mv = 1
        if s.frame_id_bits:
            r.f(s.frame_id_bits)
        frame = _Frame(r, s)
        frame.override = frame_type == _SWITCH or (not s.reduced and bool(r.f(1)))
        r.f(s.order_hint_bits)
        if not (intra or error_resilient):
            r.f(3)  # primary_ref_frame
        if s.decoder_model and r.f(1):  # buffer_removal_time_present_flag
            for idc, present in zip(s.op_idc, s.op_decoder_model):
                in_layers = (idc >> temporal) & 1 and (idc >> (spatial + 8)) & 1
                if present and (idc == 0 or in_layers):
                    r.f(s.removal_bits)
        refresh = 0xFF if frame_type == _SWITCH or (frame_type == _KEY and show_frame) else r.f(8)
        if (not intra or refresh != 0xFF) and error_resilient and s.order_hint_bits:
            r.f(8 * s.order_hint_bits)  # ref_order_hint[]
        if intra:
            frame.frame_size()
            frame.render_size()
            if screen_content and frame.upscaled_width == frame.width:
                r.f(1)  # allow_intrabc
        else:
            short_signalling = bool(s.order_hint_bits) and bool(r.f(1))
            if short_signalling:
                r.f(6)  # last_frame_idx, gold_frame_idx
            refs = [] if short_signalling else [0] * _REFS
            for i in range(_REFS):
                if not short_signalling:
                    refs[i] = r.f(3)
                if s.frame_id_bits:
                    r.f(s.delta_frame_id_bits)
            if frame.override and not error_resilient:
                for i in range(_REFS):
                    if r.f(1):  # found_ref: the size of reference i
                        if short_signalling:
                            raise ValueError("frame sized from a reference chosen by short signalling")
                        slot = self.slots[refs[i]]
                        if slot is None:
                            raise ValueError("frame sized from an empty reference slot")
                        frame.upscaled_width, frame.height = slot.upscaled_width, slot.height
                        frame.width = frame.upscaled_width
                        frame.superres_params()
                        break
                else:
                    frame.frame_size()
                    frame.render_size()
            else:
                frame.frame_size()
                frame.render_size()
            if not force_integer_mv:
                r.f(1)  # allow_high_precision_mv
            if not r.f(1):  # is_filter_switchable
                r.f(2)
            r.f(1)  # is_motion_mode_switchable
            if not error_resilient and s.ref_frame_mvs:
                r.f(1)  # use_ref_frame_mvs
        if not (s.reduced or disable_cdf_update):
            r.f(1)  # disable_frame_end_update_cdf
        frame.tile_info()
        q = r.f(8)
        stored = _Slot(frame.upscaled_width, frame.height, frame_type, q)
        for i in range(8):
            if refresh >> i & 1:
                self.slots[i] = stored
        return show_frame, q
