/* See pixels.h. Per-pixel work is kept to the cases that need it (unpremultiply, mix, 8-bit, channel
 * count changes); the common case is one memcpy per row. */
#include "pixels.h"

#include <math.h>
#include <string.h>

#include "frames_client.h"

OfxRectI pix_intersect(OfxRectI a, OfxRectI b) {
    OfxRectI r = {a.x1 > b.x1 ? a.x1 : b.x1, a.y1 > b.y1 ? a.y1 : b.y1, a.x2 < b.x2 ? a.x2 : b.x2,
                  a.y2 < b.y2 ? a.y2 : b.y2};
    if (r.x2 < r.x1) r.x2 = r.x1;
    if (r.y2 < r.y1) r.y2 = r.y1;
    return r;
}

int pix_empty(OfxRectI r) { return r.x2 <= r.x1 || r.y2 <= r.y1; }

int pix_shm_format(int depth, int ncomp) {
    if (depth == 4) return ncomp == 4 ? VD_FMT_RGBA_F32 : VD_FMT_RGB_F32;
    return ncomp == 4 ? VD_FMT_RGBA_U16 : VD_FMT_RGB_U16;
}

size_t pix_shm_pixel_bytes(int depth, int ncomp) { return (size_t)ncomp * (depth == 4 ? 4 : 2); }

static const uint8_t *pixel_at(const ofx_img *im, int x, int y) {
    return im->data + (ptrdiff_t)(y - im->b.y1) * im->row_bytes + (ptrdiff_t)(x - im->b.x1) * im->ncomp * im->depth;
}

/* one host sample as a float in the image's own units (0..1, 0..65535 or 0..255) */
static float read_sample(const uint8_t *p, int depth, int c) {
    switch (depth) {
    case 4: {
        float v;
        memcpy(&v, p + 4 * c, 4);
        return v;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, p + 2 * c, 2);
        return (float)v;
    }
    default: return (float)p[c];
    }
}

static float depth_max(int depth) { return depth == 4 ? 1.0f : depth == 2 ? 65535.0f : 255.0f; }

void pix_pack(const ofx_img *src, OfxRectI r, uint8_t *dst, size_t dst_row) {
    const int w = r.x2 - r.x1;
    const size_t px = pix_shm_pixel_bytes(src->depth, src->ncomp);
    const OfxRectI in = pix_intersect(r, src->b);
    const int plain = !(src->premult && src->ncomp == 4) && src->depth != 1;
    for (int y = r.y1; y < r.y2; y++) {
        uint8_t *row = dst + (size_t)(y - r.y1) * dst_row;
        if (y < in.y1 || y >= in.y2 || pix_empty(in)) {
            memset(row, 0, (size_t)w * px);
            continue;
        }
        if (in.x1 > r.x1) memset(row, 0, (size_t)(in.x1 - r.x1) * px);
        if (in.x2 < r.x2) memset(row + (size_t)(in.x2 - r.x1) * px, 0, (size_t)(r.x2 - in.x2) * px);
        uint8_t *out = row + (size_t)(in.x1 - r.x1) * px;
        const uint8_t *s = pixel_at(src, in.x1, y);
        if (plain) { /* float and 16-bit samples are already in the wire format */
            memcpy(out, s, (size_t)(in.x2 - in.x1) * px);
            continue;
        }
        const float mx = depth_max(src->depth);
        for (int x = in.x1; x < in.x2; x++, s += src->ncomp * src->depth, out += px) {
            float v[4];
            for (int c = 0; c < src->ncomp; c++) v[c] = read_sample(s, src->depth, c);
            if (src->premult && src->ncomp == 4) {
                float a = v[3] / mx;
                for (int c = 0; c < 3; c++) v[c] = a > 0 ? v[c] / a : 0.0f;
            }
            for (int c = 0; c < src->ncomp; c++) {
                if (src->depth == 4) {
                    memcpy(out + 4 * c, &v[c], 4);
                } else {
                    float u = src->depth == 1 ? v[c] * 257.0f : v[c]; /* 8-bit to 16-bit: 255 -> 65535 */
                    uint16_t q = (uint16_t)(u <= 0 ? 0 : u >= 65535.0f ? 65535 : lrintf(u));
                    memcpy(out + 2 * c, &q, 2);
                }
            }
        }
    }
}

static void write_sample(uint8_t *p, int depth, int c, float v) {
    if (depth == 4) {
        memcpy(p + 4 * c, &v, 4);
    } else if (depth == 2) {
        uint16_t q = (uint16_t)(v <= 0 ? 0 : v >= 65535.0f ? 65535 : lrintf(v));
        memcpy(p + 2 * c, &q, 2);
    } else {
        p[c] = (uint8_t)(v <= 0 ? 0 : v >= 255.0f ? 255 : lrintf(v));
    }
}

static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

void pix_unpack(ofx_img *dst, OfxRectI win, const uint8_t *enh, size_t enh_row, int enh_ncomp, OfxRectI e, int scale,
                const ofx_img *src, double mix) {
    win = pix_intersect(win, dst->b);
    if (pix_empty(win)) return;
    const int dpx = dst->ncomp * dst->depth;
    const int esample = dst->depth == 4 ? 4 : 2;
    const int epx = enh_ncomp * esample;
    const float dmax = depth_max(dst->depth);
    /* enhanced samples (f32 or u16) to the output's units */
    const float ek = dst->depth == 1 ? 255.0f / 65535.0f : 1.0f;
    const int premult = dst->premult && dst->ncomp == 4;
    const int fast = enh && mix >= 1.0 && !premult && dst->depth != 1 && enh_ncomp == dst->ncomp;
    const OfxRectI inside = pix_intersect(win, e);
    for (int y = win.y1; y < win.y2; y++) {
        uint8_t *row = dst->data + (ptrdiff_t)(y - dst->b.y1) * dst->row_bytes + (ptrdiff_t)(win.x1 - dst->b.x1) * dpx;
        if (y < inside.y1 || y >= inside.y2 || pix_empty(inside)) {
            memset(row, 0, (size_t)(win.x2 - win.x1) * dpx);
            continue;
        }
        if (inside.x1 > win.x1) memset(row, 0, (size_t)(inside.x1 - win.x1) * dpx);
        if (inside.x2 < win.x2) memset(row + (size_t)(inside.x2 - win.x1) * dpx, 0, (size_t)(win.x2 - inside.x2) * dpx);
        uint8_t *out = row + (size_t)(inside.x1 - win.x1) * dpx;
        const uint8_t *er = enh ? enh + (size_t)(y - e.y1) * enh_row + (size_t)(inside.x1 - e.x1) * epx : NULL;
        if (fast) {
            memcpy(out, er, (size_t)(inside.x2 - inside.x1) * dpx);
            continue;
        }
        const int sy = floor_div(y, scale);
        for (int x = inside.x1; x < inside.x2; x++, out += dpx) {
            float v[4] = {0, 0, 0, dmax};
            if (enh) {
                for (int c = 0; c < enh_ncomp && c < 4; c++) v[c] = read_sample(er, esample, c) * ek;
                er += epx;
                if (premult) { /* the model saw straight colour; the host wants it premultiplied back */
                    float a = v[3] / dmax;
                    for (int c = 0; c < 3; c++) v[c] *= a;
                }
            }
            if (mix < 1.0 || !enh) {
                float s[4] = {0, 0, 0, 0};
                const int sx = floor_div(x, scale);
                if (src && sx >= src->b.x1 && sx < src->b.x2 && sy >= src->b.y1 && sy < src->b.y2) {
                    const uint8_t *sp = pixel_at(src, sx, sy);
                    const float sk = dmax / depth_max(src->depth);
                    for (int c = 0; c < 4; c++) s[c] = c < src->ncomp ? read_sample(sp, src->depth, c) * sk : dmax;
                }
                const float m = enh ? (float)mix : 0.0f;
                for (int c = 0; c < 4; c++) v[c] = s[c] + m * (v[c] - s[c]);
            }
            for (int c = 0; c < dst->ncomp; c++) write_sample(out, dst->depth, c, v[c]);
        }
    }
}
