/* Moving pixels between host images and the shared-memory frames the server reads and writes.
 *
 * OFX addressing: the data pointer is pixel (bounds.x1, bounds.y1), the BOTTOM-left of the image, and row
 * y+1 lies rowBytes further on; rowBytes may be negative (top-down memory) and larger than a row
 * (padding). Shared-memory frames here are packed bottom-up too (row 0 = lowest y), so the server is sent
 * a negative stride (docs/frame-protocol.md, "bottom-up images"). */
#ifndef VDIFF_PIXELS_H
#define VDIFF_PIXELS_H

#include <stddef.h>
#include <stdint.h>

#include "vdiff_ofx_abi.h"

typedef struct ofx_img {
    uint8_t *data;
    int row_bytes;
    OfxRectI b;      /* bounds, pixel coordinates */
    int depth;       /* bytes per sample: 1 byte, 2 short, 4 float */
    int ncomp;       /* 3 RGB, 4 RGBA */
    int premult;     /* RGBA premultiplied by alpha */
} ofx_img;

int pix_shm_format(int depth, int ncomp);  /* VD_FMT_*; 8-bit travels as 16-bit */
size_t pix_shm_pixel_bytes(int depth, int ncomp);

/* Pack rect r of src into dst (bottom-up rows of dst_row bytes, shm format of src); pixels of r outside
 * src's bounds become 0. RGBA premultiplied input is unpremultiplied (models see straight colour). */
void pix_pack(const ofx_img *src, OfxRectI r, uint8_t *dst, size_t dst_row);

/* Write window win of dst from enh, the enhanced frame covering rect e (output pixel coordinates,
 * bottom-up rows of enh_row bytes, shm format with enh_ncomp channels); enh NULL means "no enhanced
 * frame" (bypass). mix < 1 blends with src sampled at (x/scale, y/scale). Pixels outside e become 0. */
void pix_unpack(ofx_img *dst, OfxRectI win, const uint8_t *enh, size_t enh_row, int enh_ncomp, OfxRectI e, int scale,
                const ofx_img *src, double mix);

OfxRectI pix_intersect(OfxRectI a, OfxRectI b);
int pix_empty(OfxRectI r);

#endif
