"""The quantiser an H.265 stream was coded with, read from its slice headers.

Why: FFmpeg's HEVC decoder exports no QP table (unlike H.264's, io.codec_qp), and HEVC's deblocking filter and SAO
hide block edges even better than H.264's, so a delivery file at CRF 40 measures as clean. Each slice header states
its quantiser (SliceQpY = 26 + init_qp_minus26 + slice_qp_delta, H.265 7.4.7.1), reached by parsing the parameter
sets and the header fields before it (H.265 7.3): no pixel decoding, a few microseconds a picture. Coding units
may shift the QP from there (adaptive quantisation); their deltas sit in the CABAC data, and the slice QP is the
level they vary around.

Anything this parser does not follow (an SCC or multi-layer stream, a missing parameter set, a damaged header)
gives None for that picture, never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .bits import BitReader as _Bits

_VPS, _SPS, _PPS = 32, 33, 34
_IDR = (19, 20)  # IDR_W_RADL, IDR_N_LP: no picture order count or reference set in their headers
_B, _P, _I = 0, 1, 2


def _rbsp(nal: bytes) -> bytes:
    """The NAL unit's payload without its 2-byte header and with each 00 00 03 back to 00 00."""
    return nal[2:].replace(b"\x00\x00\x03", b"\x00\x00")


def _ceil_log2(n: int) -> int:
    return max(n - 1, 0).bit_length()


@dataclass
class _Rps:
    deltas: int  # NumDeltaPocs
    used: int  # pictures used by the current one (for NumPicTotalCurr)


@dataclass
class _Sps:
    chroma_array_type: int
    separate_planes: bool
    poc_lsb_bits: int
    ctbs: int  # PicSizeInCtbsY
    rps: list[_Rps]
    lt_used: list[bool]  # used_by_curr_pic_lt_sps_flag per long-term picture the SPS lists
    lt_present: bool
    temporal_mvp: bool
    sao: bool


@dataclass
class _Pps:
    sps_id: int
    dependent_slices: bool
    output_flag: bool
    extra_bits: int
    cabac_init: bool
    ref_idx_default: tuple[int, int]
    init_qp: int
    weighted_p: bool
    weighted_b: bool
    lists_modification: bool


def _profile_tier_level(r: _Bits, max_sub_layers_minus1: int) -> None:
    r.skip(88 + 8)  # general profile space .. constraint flags, general_level_idc
    present = [(r.flag(), r.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.skip(2 * (8 - max_sub_layers_minus1))
    for profile, level in present:
        r.skip(88 * profile + 8 * level)


def _scaling_list_data(r: _Bits) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not r.flag():  # scaling_list_pred_mode_flag 0: copied from another list
                r.ue()
                continue
            if size_id > 1:
                r.se()
            for _ in range(min(64, 1 << (4 + (size_id << 1)))):
                r.se()


def _st_ref_pic_set(r: _Bits, idx: int, sets: list[_Rps], in_slice: bool = False) -> _Rps:
    """st_ref_pic_set(idx) (H.265 7.3.7): how many reference deltas it holds and how many the picture uses; ``sets``
    are the SPS's sets before it (all of them for the one a slice header carries, ``in_slice``)."""
    if idx != 0 and r.flag():  # inter_ref_pic_set_prediction_flag: predicted from an earlier set
        delta_idx = r.ue() + 1 if in_slice else 1
        if delta_idx > idx:
            raise ValueError("reference picture set predicted from a set that does not exist")
        r.u(1)
        r.ue()  # delta_rps_sign, abs_delta_rps_minus1
        deltas = used = 0
        for _ in range(sets[idx - delta_idx].deltas + 1):
            used_by_curr = r.flag()
            use_delta = used_by_curr or r.flag()
            deltas += use_delta
            used += used_by_curr
        return _Rps(deltas, used)
    negative, positive = r.ue(), r.ue()
    if negative > 16 or positive > 16:
        raise ValueError("reference picture set larger than the level allows")
    used = 0
    for _ in range(negative + positive):
        r.ue()
        used += r.u(1)
    return _Rps(negative + positive, used)


def _parse_sps(r: _Bits) -> tuple[int, _Sps]:
    r.u(4)
    max_sub_layers_minus1 = r.u(3)
    r.u(1)
    _profile_tier_level(r, max_sub_layers_minus1)
    sps_id = r.ue()
    chroma = r.ue()
    separate = chroma == 3 and r.flag()
    width, height = r.ue(), r.ue()
    if r.flag():  # conformance window
        for _ in range(4):
            r.ue()
    r.ue()
    r.ue()  # bit depths: SliceQpY is on the same scale at every depth
    poc_lsb_bits = r.ue() + 4
    ordering_all = r.flag()
    for _ in range(0 if ordering_all else max_sub_layers_minus1, max_sub_layers_minus1 + 1):
        r.ue()
        r.ue()
        r.ue()
    ctb_log2 = r.ue() + 3 + r.ue()
    r.ue()
    r.ue()
    r.ue()
    r.ue()  # transform block sizes and hierarchy depths
    if r.flag() and r.flag():  # scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        _scaling_list_data(r)
    r.u(1)  # amp
    sao = r.flag()
    if r.flag():  # pcm_enabled_flag
        r.u(8)
        r.ue()
        r.ue()
        r.u(1)
    sets: list[_Rps] = []
    count = r.ue()
    if count > 64:
        raise ValueError("more short-term reference picture sets than H.265 allows")
    for i in range(count):
        sets.append(_st_ref_pic_set(r, i, sets))
    lt_present = r.flag()
    lt_used: list[bool] = []
    if lt_present:
        for _ in range(r.ue()):
            r.u(poc_lsb_bits)
            lt_used.append(r.flag())
    temporal_mvp = r.flag()
    ctb = 1 << ctb_log2
    ctbs = math.ceil(width / ctb) * math.ceil(height / ctb)
    return sps_id, _Sps(0 if separate else chroma, separate, poc_lsb_bits, ctbs, sets, lt_used, lt_present,
                        temporal_mvp, sao)


def _parse_pps(r: _Bits) -> tuple[int, _Pps]:
    pps_id, sps_id = r.ue(), r.ue()
    dependent, output_flag, extra_bits = r.flag(), r.flag(), r.u(3)
    r.u(1)  # sign data hiding
    cabac_init = r.flag()
    ref_idx_default = (r.ue(), r.ue())
    init_qp = 26 + r.se()
    r.u(2)  # constrained intra pred, transform skip
    if r.flag():  # cu_qp_delta_enabled_flag
        r.ue()
    r.se()
    r.se()
    r.u(1)  # chroma QP offsets
    weighted_p, weighted_b = r.flag(), r.flag()
    r.u(1)  # transquant bypass
    tiles = r.flag()
    r.u(1)  # entropy coding sync
    if tiles:
        columns, rows = r.ue(), r.ue()
        if not r.flag():  # uniform_spacing_flag
            for _ in range(columns + rows):
                r.ue()
        r.u(1)
    r.u(1)  # loop filter across slices
    if r.flag():  # deblocking_filter_control_present_flag
        r.u(1)
        if not r.flag():  # pps_deblocking_filter_disabled_flag
            r.se()
            r.se()
    if r.flag():
        _scaling_list_data(r)
    lists_modification = r.flag()
    return pps_id, _Pps(sps_id, dependent, output_flag, extra_bits, cabac_init, ref_idx_default, init_qp,
                        weighted_p, weighted_b, lists_modification)


def _pred_weight_table(r: _Bits, chroma: int, refs: list[int]) -> None:
    r.ue()
    if chroma:
        r.se()
    for count in refs:  # list 0, then list 1 for B slices
        luma = [r.flag() for _ in range(count)]
        chroma_flags = [r.flag() for _ in range(count)] if chroma else [False] * count
        for lw, cw in zip(luma, chroma_flags):
            if lw:
                r.se()
                r.se()
            if cw:
                for _ in range(4):
                    r.se()


def _slice_qp(r: _Bits, nal_type: int, sps: dict[int, _Sps], pps: dict[int, _Pps]) -> int | None:
    """SliceQpY of an independent slice segment (None for a dependent one, which carries no QP of its own)."""
    first = r.flag()
    if 16 <= nal_type <= 23:
        r.u(1)  # no_output_of_prior_pics_flag
    p = pps[r.ue()]
    s = sps[p.sps_id]
    if not first:
        if p.dependent_slices and r.flag():
            return None
        r.u(_ceil_log2(s.ctbs))  # slice_segment_address
    r.skip(p.extra_bits)
    slice_type = r.ue()
    if slice_type not in (_B, _P, _I):
        raise ValueError(f"slice type {slice_type}")
    if p.output_flag:
        r.u(1)
    if s.separate_planes:
        r.u(2)
    temporal_mvp = False
    used = 0
    if nal_type not in _IDR:
        r.u(s.poc_lsb_bits)
        if not r.flag():  # short_term_ref_pic_set_sps_flag 0: the set is in the header
            used = _st_ref_pic_set(r, len(s.rps), s.rps, in_slice=True).used
        else:
            idx = r.u(_ceil_log2(len(s.rps))) if len(s.rps) > 1 else 0
            used = s.rps[idx].used
        if s.lt_present:
            from_sps = r.ue() if s.lt_used else 0
            for i in range(from_sps + r.ue()):
                if i < from_sps:
                    used += s.lt_used[r.u(_ceil_log2(len(s.lt_used))) if len(s.lt_used) > 1 else 0]
                else:
                    r.u(s.poc_lsb_bits)
                    used += r.u(1)
                if r.flag():  # delta_poc_msb_present_flag
                    r.ue()
        if s.temporal_mvp:
            temporal_mvp = r.flag()
    if s.sao:
        r.u(1)
        if s.chroma_array_type:
            r.u(1)
    if slice_type != _I:
        refs = [p.ref_idx_default[0] + 1, p.ref_idx_default[1] + 1]
        if r.flag():  # num_ref_idx_active_override_flag
            refs[0] = r.ue() + 1
            if slice_type == _B:
                refs[1] = r.ue() + 1
        refs = refs if slice_type == _B else refs[:1]
        if p.lists_modification and used > 1:
            for count in refs:
                if r.flag():
                    r.skip(count * _ceil_log2(used))
        if slice_type == _B:
            r.u(1)  # mvd_l1_zero_flag
        if p.cabac_init:
            r.u(1)
        if temporal_mvp:
            from_l0 = r.flag() if slice_type == _B else True
            if refs[0 if from_l0 else 1] > 1:
                r.ue()  # collocated_ref_idx
        if (p.weighted_p and slice_type == _P) or (p.weighted_b and slice_type == _B):
            _pred_weight_table(r, s.chroma_array_type, refs)
        r.ue()  # five_minus_max_num_merge_cand
    qp = p.init_qp + r.se()
    if not -48 <= qp <= 51:  # -QpBdOffsetY (16 bits at most) .. 51
        raise ValueError(f"slice QP {qp} out of range")
    return qp


def _nal_units(data: bytes, length_size: int) -> list[bytes]:
    """A packet's NAL units: length-prefixed (MP4/MOV/MKV, ``length_size`` bytes) or Annex B (0: start codes)."""
    if length_size:
        units, pos = [], 0
        while pos + length_size <= len(data):
            n = int.from_bytes(data[pos:pos + length_size], "big")
            pos += length_size
            units.append(data[pos:pos + n])
            pos += n
        return units
    parts = data.split(b"\x00\x00\x01")
    return [p.rstrip(b"\x00") for p in parts[1:] if p]


@dataclass
class HevcQp:
    """Reads each H.265 packet's slice QP; parameter sets come from the stream's extradata and from the packets."""

    length_size: int = 0
    sps: dict[int, _Sps] = field(default_factory=dict)
    pps: dict[int, _Pps] = field(default_factory=dict)

    @classmethod
    def from_extradata(cls, extradata: bytes | None) -> "HevcQp":
        """hvcC (MP4/MOV/MKV: a configuration record whose NAL units are length-prefixed) or Annex B extradata."""
        reader = cls()
        data = bytes(extradata or b"")
        if len(data) >= 23 and data[0] == 1:  # HEVCDecoderConfigurationRecord
            reader.length_size = (data[21] & 3) + 1
            pos = 23
            for _ in range(data[22]):
                count = int.from_bytes(data[pos + 1:pos + 3], "big")
                pos += 3
                for _ in range(count):
                    n = int.from_bytes(data[pos:pos + 2], "big")
                    reader._nal(data[pos + 2:pos + 2 + n])
                    pos += 2 + n
        else:
            for nal in _nal_units(data, 0):
                reader._nal(nal)
        return reader

    def _nal(self, nal: bytes) -> float | None:
        if len(nal) < 3 or nal[0] & 0x80 or ((nal[0] & 1) << 5 | nal[1] >> 3):  # forbidden bit, layer > 0
            return None
        kind = (nal[0] >> 1) & 0x3F
        try:
            if kind == _SPS:
                key, value = _parse_sps(_Bits(_rbsp(nal)))
                self.sps[key] = value
            elif kind == _PPS:
                key, value = _parse_pps(_Bits(_rbsp(nal)))
                self.pps[key] = value
            elif kind <= 9 or 16 <= kind <= 21:  # VCL: the slice segment header is at the start
                return _slice_qp(_Bits(_rbsp(nal[:2] + nal[2:256])), kind, self.sps, self.pps)
        except (ValueError, KeyError, IndexError):
            return math.nan
        return None

    def packet_qp(self, data: bytes) -> float | None:
        """Mean SliceQpY over the packet's independent slices (None: no slice, or one this parser cannot follow)."""
        qps = [self._nal(nal) for nal in _nal_units(bytes(data), self.length_size)]
        qps = [q for q in qps if q is not None]
        if not qps or any(math.isnan(q) for q in qps):
            return None
        return float(sum(qps) / len(qps))
