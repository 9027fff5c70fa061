"""A most-significant-bit-first reader for codec headers (H.265's u(n)/ue(v)/se(v), AV1's f(n)/uvlc()/ns(n)).

Why: the QP readers (io.hevc_qp, io.av1_qp) parse a few dozen header fields per picture; a whole header fits one
Python int, so each read is a shift and a mask, and running past the end is a ValueError the callers turn into None.
"""

from __future__ import annotations


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.size = len(data) * 8
        self.pos = 0

    def u(self, n: int) -> int:
        """The next ``n`` bits as an unsigned integer (H.265 u(n), AV1 f(n))."""
        if n == 0:
            return 0
        if self.pos + n > self.size:
            raise ValueError("header runs past the end of its unit")
        self.pos += n
        return (self.value >> (self.size - self.pos)) & ((1 << n) - 1)

    f = u
    skip = u

    def flag(self) -> bool:
        return bool(self.u(1))

    def ue(self) -> int:
        """Exp-Golomb (H.265 ue(v), AV1 uvlc())."""
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise ValueError("exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    uvlc = ue

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)

    def ns(self, n: int) -> int:
        """AV1 ns(n): a value below ``n`` in the fewest bits."""
        w = n.bit_length()
        m = (1 << w) - n
        v = self.u(w - 1)
        return v if v < m else (v << 1) - m + self.u(1)
