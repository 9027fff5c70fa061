/* Render and the actions that shape it (region of definition/interest, frames needed, identity, clip
 * preferences). A frame goes: host images -> shared memory -> PROCESS on the frame server -> output image.
 * Any failure is reported through the message suite and returns kOfxStatFailed: never a silent black or
 * stale frame. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixels.h"
#include "plugin.h"

#define MAX_WINDOW 15

typedef struct fetched {
    OfxPropertySetHandle handle;
    ofx_img img;
} fetched;

static int depth_bytes(const char *s) {
    if (!s) return 0;
    if (strcmp(s, kOfxBitDepthFloat) == 0) return 4;
    if (strcmp(s, kOfxBitDepthShort) == 0) return 2;
    if (strcmp(s, kOfxBitDepthByte) == 0) return 1;
    return 0;
}

static int comp_count(const char *s) {
    if (!s) return 0;
    if (strcmp(s, kOfxImageComponentRGBA) == 0) return 4;
    if (strcmp(s, kOfxImageComponentRGB) == 0) return 3;
    return 0;
}

/* Read an image's properties; 0 if it is something we can process. */
static int image_info(OfxPropertySetHandle h, ofx_img *im, char *why, size_t why_len) {
    memset(im, 0, sizeof *im);
    void *data = NULL;
    char *depth = NULL, *comps = NULL, *premult = NULL;
    int b[4] = {0, 0, 0, 0};
    if (g_prop->propGetPointer(h, kOfxImagePropData, 0, &data) != kOfxStatOK || !data ||
        g_prop->propGetInt(h, kOfxImagePropRowBytes, 0, &im->row_bytes) != kOfxStatOK ||
        g_prop->propGetIntN(h, kOfxImagePropBounds, 4, b) != kOfxStatOK ||
        g_prop->propGetString(h, kOfxImageEffectPropPixelDepth, 0, &depth) != kOfxStatOK ||
        g_prop->propGetString(h, kOfxImageEffectPropComponents, 0, &comps) != kOfxStatOK) {
        snprintf(why, why_len, "the host gave an image without data, bounds, row bytes, depth or components");
        return -1;
    }
    im->data = (uint8_t *)data;
    im->b = (OfxRectI){b[0], b[1], b[2], b[3]};
    im->depth = depth_bytes(depth);
    im->ncomp = comp_count(comps);
    if (g_prop->propGetString(h, kOfxImageEffectPropPreMultiplication, 0, &premult) == kOfxStatOK && premult)
        im->premult = strcmp(premult, kOfxImagePreMultiplied) == 0;
    if (!im->depth || !im->ncomp) {
        snprintf(why, why_len, "unsupported image format %s %s (vdiff takes RGB/RGBA, 8-bit, 16-bit or float)",
                 comps ? comps : "?", depth ? depth : "?");
        return -1;
    }
    int w = im->b.x2 - im->b.x1, hgt = im->b.y2 - im->b.y1;
    int min_row = w * im->ncomp * im->depth;
    if (w < 0 || hgt < 0 || abs(im->row_bytes) < min_row) {
        snprintf(why, why_len, "image bounds/row bytes are inconsistent (%d x %d, rowBytes %d)", w, hgt, im->row_bytes);
        return -1;
    }
    return 0;
}

static void release(fetched *f) {
    if (f->handle) g_effect->clipReleaseImage(f->handle);
    f->handle = NULL;
}

static int host_abort(void *ctx) {
    instance *in = (instance *)ctx;
    return g_effect->abort ? g_effect->abort(in->effect) : 0;
}

static int flag(OfxPropertySetHandle args, const char *name, int *out) {
    int v = 0;
    if (g_prop->propGetInt(args, name, 0, &v) != kOfxStatOK) return 0;
    *out = v;
    return 1;
}

/* Fast model while the user scrubs or the host asks for a draft; final renders use the quality model. */
static int is_preview(instance *in, OfxPropertySetHandle args) {
    int draft = 0, interactive = 0, sequential = 0, is_interactive = 0;
    int have = flag(args, kOfxImageEffectPropRenderQualityDraft, &draft);
    have |= flag(args, kOfxImageEffectPropInteractiveRenderStatus, &interactive);
    if (have) return draft || interactive;
    /* older hosts: an interactive session that is not rendering a sequence is a preview */
    OfxPropertySetHandle props;
    if (g_effect->getPropertySet(in->effect, &props) == kOfxStatOK) flag(props, kOfxPropIsInteractive, &is_interactive);
    flag(args, kOfxImageEffectPropSequentialRenderStatus, &sequential);
    return is_interactive && !sequential;
}

static void frame_range(instance *in, double *lo, double *hi) {
    OfxPropertySetHandle props;
    double r[2];
    *lo = -1e300;
    *hi = 1e300;
    if (g_effect->clipGetPropertySet(in->src, &props) == kOfxStatOK &&
        g_prop->propGetDoubleN(props, kOfxImageEffectPropFrameRange, 2, r) == kOfxStatOK && r[1] >= r[0]) {
        *lo = r[0];
        *hi = r[1];
    }
}

static OfxStatus fail(instance *in, fetched *imgs, int n, fetched *out, const char *text) {
    for (int i = 0; i < n; i++) release(&imgs[i]);
    if (out) release(out);
    if (text) report_error(in, "%s", text);
    return kOfxStatFailed;
}

/* Cache key of a PROCESS: model settings, geometry and the host's identifiers of every input image.
 * Empty (no caching) if the host gives no identifiers. */
static void cache_key(char *key, size_t n, const vd_session_slot *slot, OfxTime t, OfxRectI p, int fmt,
                      const fetched *imgs, const int *use, int count) {
    int k = snprintf(key, n, "%s|%.9g|%u|%.6f|%d,%d,%d,%d|%d", slot->model, (double)slot->strength, slot->tile, t,
                     p.x1, p.y1, p.x2, p.y2, fmt);
    for (int i = 0; i < count && k > 0 && (size_t)k < n; i++) {
        char *uid = NULL;
        if (g_prop->propGetString(imgs[use[i]].handle, kOfxImagePropUniqueIdentifier, 0, &uid) != kOfxStatOK || !uid ||
            !*uid) {
            key[0] = 0;
            return;
        }
        k += snprintf(key + k, n - (size_t)k, "|%s", uid);
    }
    if (k <= 0 || (size_t)k >= n) key[0] = 0;
}

static int same_format(const ofx_img *a, const ofx_img *b) { return a->depth == b->depth && a->ncomp == b->ncomp; }

static OfxStatus render_locked(instance *in, OfxTime t, OfxRectI win, int preview) {
    char why[VD_ERR_MAX + 200];
    vd_err err = {{0}};
    vd_choice ch;
    choose_model(in, t, preview, &ch);
    const int scale = ch.model->scale;

    fetched out = {0}, imgs[MAX_WINDOW];
    memset(imgs, 0, sizeof imgs);
    if (g_effect->clipGetImage(in->dst, t, NULL, &out.handle) != kOfxStatOK || !out.handle)
        return fail(in, NULL, 0, NULL, "the host gave no output image");
    if (image_info(out.handle, &out.img, why, sizeof why)) return fail(in, NULL, 0, &out, why);

    /* centre frame; a missing source is, per the OFX spec, black and transparent */
    if (g_effect->clipGetImage(in->src, t, NULL, &imgs[0].handle) != kOfxStatOK || !imgs[0].handle) {
        imgs[0].handle = NULL;
        pix_unpack(&out.img, win, NULL, 0, 0, (OfxRectI){0, 0, 0, 0}, 1, NULL, 0.0);
        release(&out);
        return kOfxStatOK;
    }
    if (image_info(imgs[0].handle, &imgs[0].img, why, sizeof why)) return fail(in, imgs, 1, &out, why);
    ofx_img *centre = &imgs[0].img;
    if (centre->depth != out.img.depth) return fail(in, imgs, 1, &out, "source and output bit depths differ");
    const OfxRectI p = centre->b; /* processed rect: the RoI asked for the whole source frame */
    const int w = p.x2 - p.x1, h = p.y2 - p.y1;
    const OfxRectI e = {p.x1 * scale, p.y1 * scale, p.x2 * scale, p.y2 * scale};

    if (ch.bypass || ch.mix <= 0.0 || w == 0 || h == 0) {
        pix_unpack(&out.img, win, NULL, 0, 0, e, scale, centre, 0.0);
        release(&imgs[0]);
        release(&out);
        return kOfxStatOK;
    }

    vd_session_slot *slot = NULL;
    int had_connection = vd_conn_alive(&in->conn);
    int rc = instance_session(in, &ch, &slot, &err);
    if (rc && had_connection && !vd_conn_alive(&in->conn)) /* server restarted since the last frame: retry once */
        rc = instance_session(in, &ch, &slot, &err);
    if (rc) {
        snprintf(why, sizeof why, "vdiff: %s", err.text);
        return fail(in, imgs, 1, &out, why);
    }
    if (slot->scale != scale) {
        snprintf(why, sizeof why, "vdiff: model '%s' scales by %d, not the %d declared to the host; re-select the model",
                 slot->model, slot->scale, scale);
        return fail(in, imgs, 1, &out, why);
    }
    const int n = slot->window, k = n / 2;
    if (n > MAX_WINDOW) return fail(in, imgs, 1, &out, "vdiff: temporal window too large");

    /* temporal neighbours, nearest-available at the clip's ends (what `vdiff enhance` does) */
    int use[MAX_WINDOW]; /* use[i] = index into imgs (0 = centre) for frame i of the window */
    int nimg = 1;
    double lo, hi;
    frame_range(in, &lo, &hi);
    for (int i = 0; i < n; i++) use[i] = 0;
    for (int d = 1; d <= k; d++) {
        for (int sign = -1; sign <= 1; sign += 2) {
            const int i = k + sign * d;
            const double ti = t + sign * d;
            use[i] = use[i - sign]; /* default: the frame nearer the centre */
            if (ti < lo || ti > hi) continue;
            fetched *f = &imgs[nimg];
            if (g_effect->clipGetImage(in->src, ti, NULL, &f->handle) != kOfxStatOK || !f->handle) {
                f->handle = NULL;
                continue;
            }
            if (image_info(f->handle, &f->img, why, sizeof why) || !same_format(&f->img, centre)) {
                release(f);
                continue;
            }
            use[i] = nimg++;
        }
    }

    const int fmt = pix_shm_format(centre->depth, centre->ncomp);
    const size_t px = pix_shm_pixel_bytes(centre->depth, centre->ncomp);
    const size_t row = (size_t)w * px, orow = (size_t)w * scale * px;
    const size_t frame = row * (size_t)h, oframe = orow * (size_t)h * scale;
    char key[sizeof in->cached];
    cache_key(key, sizeof key, slot, t, p, fmt, imgs, use, n);
    if (key[0] && strcmp(key, in->cached) == 0 && in->out_shm.ptr && in->out_shm.size >= oframe) {
        for (int j = 1; j < nimg; j++) release(&imgs[j]);
        goto write_output; /* another tile of the frame we just processed */
    }
    in->cached[0] = 0;
    if (vd_shm_reserve(&in->in_shm, "in", frame * (size_t)nimg, &err) ||
        vd_shm_reserve(&in->out_shm, "out", oframe, &err)) {
        snprintf(why, sizeof why, "vdiff: %s", err.text);
        return fail(in, imgs, nimg, &out, why);
    }
    for (int j = 0; j < nimg; j++) pix_pack(&imgs[j].img, p, (uint8_t *)in->in_shm.ptr + frame * j, row);
    for (int j = 1; j < nimg; j++) release(&imgs[j]); /* keep only the centre (for mix) */

    uint64_t offsets[MAX_WINDOW];
    for (int i = 0; i < n; i++) offsets[i] = frame * (size_t)use[i] + row * (size_t)(h - 1); /* top row */
    vd_process_req req = {slot->id, (uint32_t)w, (uint32_t)h, (uint16_t)fmt, (uint16_t)n, -(int64_t)row,
                          -(int64_t)orow, orow * (size_t)(h * scale - 1), offsets, in->in_shm.name, in->out_shm.name};
    uint32_t ow = 0, oh = 0, us = 0;
    if (vd_process(&in->conn, &req, &ow, &oh, &us, host_abort, in, &err)) {
        int aborted = host_abort(in);
        if (aborted) instance_drop_connection(in); /* the reply may still come: start clean next time */
        snprintf(why, sizeof why, "vdiff: %s", err.text);
        return fail(in, imgs, 1, &out, aborted ? NULL : why);
    }
    if (ow != (uint32_t)(w * scale) || oh != (uint32_t)(h * scale)) {
        snprintf(why, sizeof why, "vdiff: server returned %ux%u, expected %dx%d", ow, oh, w * scale, h * scale);
        return fail(in, imgs, 1, &out, why);
    }
    snprintf(in->cached, sizeof in->cached, "%s", key);
write_output:
    pix_unpack(&out.img, win, (const uint8_t *)in->out_shm.ptr, orow, centre->ncomp, e, scale, centre, ch.mix);
    release(&imgs[0]);
    release(&out);
    clear_error(in);
    return kOfxStatOK;
}

OfxStatus action_render(instance *in, OfxPropertySetHandle args) {
    double t = 0;
    int w[4];
    if (g_prop->propGetDouble(args, kOfxPropTime, 0, &t) != kOfxStatOK ||
        g_prop->propGetIntN(args, kOfxImageEffectPropRenderWindow, 4, w) != kOfxStatOK)
        return kOfxStatErrBadHandle;
    int preview = is_preview(in, args);
    vd_mutex_lock(in->lock);
    OfxStatus st = render_locked(in, t, (OfxRectI){w[0], w[1], w[2], w[3]}, preview);
    vd_mutex_unlock(in->lock);
    return st;
}

static double arg_time(OfxPropertySetHandle args) {
    double t = 0;
    g_prop->propGetDouble(args, kOfxPropTime, 0, &t);
    return t;
}

/* The model and settings a final (non-preview) render at time t would use, read under the instance lock. */
static void choose_final(instance *in, OfxTime t, vd_choice *ch) {
    vd_mutex_lock(in->lock);
    choose_model(in, t, 0, ch);
    vd_mutex_unlock(in->lock);
}

OfxStatus action_rod(instance *in, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args) {
    const double t = arg_time(in_args);
    vd_choice ch;
    choose_final(in, t, &ch);
    if (ch.model->scale == 1) return kOfxStatReplyDefault; /* a filter's RoD is its source's */
    OfxRectD rod;
    if (g_effect->clipGetRegionOfDefinition(in->src, t, &rod) != kOfxStatOK) return kOfxStatFailed;
    /* canonical coordinates scale with the pixels: PAR and render scale cancel out */
    const double s = ch.model->scale;
    double r[4] = {rod.x1 * s, rod.y1 * s, rod.x2 * s, rod.y2 * s};
    g_prop->propSetDoubleN(out_args, kOfxImageEffectPropRegionOfDefinition, 4, r);
    return kOfxStatOK;
}

OfxStatus action_roi(instance *in, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args) {
    /* The model sees the whole frame so any tile of the output equals the same pixels of a full-frame
     * render (no seams between host tiles, identical to `vdiff enhance`). */
    OfxRectD rod;
    if (g_effect->clipGetRegionOfDefinition(in->src, arg_time(in_args), &rod) != kOfxStatOK) return kOfxStatReplyDefault;
    double r[4] = {rod.x1, rod.y1, rod.x2, rod.y2};
    g_prop->propSetDoubleN(out_args, kOfxImageEffectRegionOfInterestPrefix kOfxImageEffectSimpleSourceClipName, 4, r);
    return kOfxStatOK;
}

OfxStatus action_frames_needed(instance *in, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args) {
    const double t = arg_time(in_args);
    vd_choice ch;
    choose_final(in, t, &ch);
    const int k = ch.model->window / 2;
    if (k == 0) return kOfxStatReplyDefault;
    double r[2] = {t - k, t + k};
    g_prop->propSetDoubleN(out_args, kOfxImageEffectFrameRangePrefix kOfxImageEffectSimpleSourceClipName, 2, r);
    return kOfxStatOK;
}

OfxStatus action_is_identity(instance *in, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args) {
    const double t = arg_time(in_args);
    vd_choice ch;
    choose_final(in, t, &ch);
    if (ch.mix > 0.0 || ch.model->scale != 1) return kOfxStatReplyDefault;
    g_prop->propSetString(out_args, kOfxPropName, 0, kOfxImageEffectSimpleSourceClipName);
    g_prop->propSetDouble(out_args, kOfxPropTime, 0, t);
    return kOfxStatOK;
}

OfxStatus action_clip_preferences(instance *in, OfxPropertySetHandle out_args) {
    /* output keeps the source's channels (RGB stays RGB) */
    OfxPropertySetHandle props;
    char *comps = NULL;
    if (g_effect->clipGetPropertySet(in->src, &props) != kOfxStatOK ||
        g_prop->propGetString(props, kOfxImageEffectPropComponents, 0, &comps) != kOfxStatOK || !comp_count(comps))
        return kOfxStatReplyDefault;
    g_prop->propSetString(out_args, kOfxImageClipPropComponentsPrefix kOfxImageEffectOutputClipName, 0, comps);
    return kOfxStatOK;
}
