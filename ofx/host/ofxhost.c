/* A headless OpenFX host for tests and benchmarks: dlopens an OFX binary, provides the property, image
 * effect, parameter, message, memory and multi-thread suites, and runs the actions a real host runs
 * (load, describe, describe-in-context "filter", create instance, region of interest, frames needed,
 * render, destroy). Frames come from the caller (Python via ctypes) as raw OFX-layout buffers, so tests
 * control row order, stride, bounds, render scale and pixel aspect ratio.
 *
 * It is strict where real hosts are strict (property types, indices, released images) so plugin bugs
 * show up here rather than in Resolve. One plugin instance at a time. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdiff_ofx_abi.h"

#define API __attribute__((visibility("default")))

/* ------------------------------------------------------------------ property sets */
enum { T_INT, T_DOUBLE, T_STRING, T_POINTER };
#define MAX_DIM 64

typedef struct prop {
    char *name;
    int type, dim;
    union {
        int i[MAX_DIM];
        double d[MAX_DIM];
        char *s[MAX_DIM];
        void *p[MAX_DIM];
    } v;
} prop;

struct OfxPropertySetStruct {
    prop *items;
    int n, cap;
};
typedef struct OfxPropertySetStruct pset;

static pset *pset_new(void) { return (pset *)calloc(1, sizeof(pset)); }

static void pset_free(pset *ps) {
    if (!ps) return;
    for (int i = 0; i < ps->n; i++) {
        if (ps->items[i].type == T_STRING)
            for (int k = 0; k < ps->items[i].dim; k++) free(ps->items[i].v.s[k]);
        free(ps->items[i].name);
    }
    free(ps->items);
    free(ps);
}

static prop *find(pset *ps, const char *name) {
    if (!ps || !name) return NULL;
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].name, name) == 0) return &ps->items[i];
    return NULL;
}

static prop *find_or_add(pset *ps, const char *name, int type) {
    prop *p = find(ps, name);
    if (p) return p->type == type ? p : NULL;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 16;
        ps->items = (prop *)realloc(ps->items, sizeof(prop) * ps->cap);
    }
    p = &ps->items[ps->n++];
    memset(p, 0, sizeof *p);
    p->name = strdup(name);
    p->type = type;
    return p;
}

static int g_bad_prop_calls; /* plugin asked for a property with the wrong type or index */

static OfxStatus set_any(pset *ps, const char *name, int type, int idx, const void *val) {
    if (!ps) return kOfxStatErrBadHandle;
    if (idx < 0 || idx >= MAX_DIM) return kOfxStatErrBadIndex;
    prop *p = find_or_add(ps, name, type);
    if (!p) {
        g_bad_prop_calls++;
        return kOfxStatErrValue;
    }
    switch (type) {
    case T_INT: p->v.i[idx] = *(const int *)val; break;
    case T_DOUBLE: p->v.d[idx] = *(const double *)val; break;
    case T_POINTER: p->v.p[idx] = *(void *const *)val; break;
    case T_STRING:
        free(idx < p->dim ? p->v.s[idx] : NULL);
        p->v.s[idx] = strdup(*(const char *const *)val);
        break;
    }
    if (idx >= p->dim) {
        if (type == T_STRING) /* fill gaps so every index below dim is a valid string */
            for (int k = p->dim; k >= 0 && k < idx && k < MAX_DIM; k++) p->v.s[k] = strdup("");
        p->dim = idx + 1;
    }
    return kOfxStatOK;
}

static OfxStatus get_any(pset *ps, const char *name, int type, int idx, void *out) {
    if (!ps) return kOfxStatErrBadHandle;
    prop *p = find(ps, name);
    if (!p) return kOfxStatErrUnknown;
    if (p->type != type) {
        g_bad_prop_calls++;
        return kOfxStatErrValue;
    }
    if (idx < 0 || idx >= p->dim) return kOfxStatErrBadIndex;
    switch (type) {
    case T_INT: *(int *)out = p->v.i[idx]; break;
    case T_DOUBLE: *(double *)out = p->v.d[idx]; break;
    case T_POINTER: *(void **)out = p->v.p[idx]; break;
    case T_STRING: *(char **)out = p->v.s[idx]; break;
    }
    return kOfxStatOK;
}

static OfxStatus pSetPointer(OfxPropertySetHandle h, const char *n, int i, void *v) { return set_any(h, n, T_POINTER, i, &v); }
static OfxStatus pSetString(OfxPropertySetHandle h, const char *n, int i, const char *v) {
    return v ? set_any(h, n, T_STRING, i, &v) : kOfxStatErrValue;
}
static OfxStatus pSetDouble(OfxPropertySetHandle h, const char *n, int i, double v) { return set_any(h, n, T_DOUBLE, i, &v); }
static OfxStatus pSetInt(OfxPropertySetHandle h, const char *n, int i, int v) { return set_any(h, n, T_INT, i, &v); }
static OfxStatus pSetPointerN(OfxPropertySetHandle h, const char *n, int c, void *const *v) {
    for (int i = 0; i < c; i++) {
        OfxStatus s = set_any(h, n, T_POINTER, i, &v[i]);
        if (s) return s;
    }
    return kOfxStatOK;
}
static OfxStatus pSetStringN(OfxPropertySetHandle h, const char *n, int c, const char *const *v) {
    for (int i = 0; i < c; i++) {
        OfxStatus s = set_any(h, n, T_STRING, i, &v[i]);
        if (s) return s;
    }
    return kOfxStatOK;
}
static OfxStatus pSetDoubleN(OfxPropertySetHandle h, const char *n, int c, const double *v) {
    for (int i = 0; i < c; i++) {
        OfxStatus s = set_any(h, n, T_DOUBLE, i, &v[i]);
        if (s) return s;
    }
    return kOfxStatOK;
}
static OfxStatus pSetIntN(OfxPropertySetHandle h, const char *n, int c, const int *v) {
    for (int i = 0; i < c; i++) {
        OfxStatus s = set_any(h, n, T_INT, i, &v[i]);
        if (s) return s;
    }
    return kOfxStatOK;
}
static OfxStatus pGetPointer(OfxPropertySetHandle h, const char *n, int i, void **v) { return get_any(h, n, T_POINTER, i, v); }
static OfxStatus pGetString(OfxPropertySetHandle h, const char *n, int i, char **v) { return get_any(h, n, T_STRING, i, v); }
static OfxStatus pGetDouble(OfxPropertySetHandle h, const char *n, int i, double *v) { return get_any(h, n, T_DOUBLE, i, v); }
static OfxStatus pGetInt(OfxPropertySetHandle h, const char *n, int i, int *v) { return get_any(h, n, T_INT, i, v); }
static OfxStatus pGetPointerN(OfxPropertySetHandle h, const char *n, int c, void **v) {
    for (int i = 0; i < c; i++) {
        OfxStatus s = get_any(h, n, T_POINTER, i, &v[i]);
        if (s) return s;
    }
    return kOfxStatOK;
}
static OfxStatus pGetStringN(OfxPropertySetHandle h, const char *n, int c, char **v) {
    for (int i = 0; i < c; i++) {
        OfxStatus s = get_any(h, n, T_STRING, i, &v[i]);
        if (s) return s;
    }
    return kOfxStatOK;
}
static OfxStatus pGetDoubleN(OfxPropertySetHandle h, const char *n, int c, double *v) {
    for (int i = 0; i < c; i++) {
        OfxStatus s = get_any(h, n, T_DOUBLE, i, &v[i]);
        if (s) return s;
    }
    return kOfxStatOK;
}
static OfxStatus pGetIntN(OfxPropertySetHandle h, const char *n, int c, int *v) {
    for (int i = 0; i < c; i++) {
        OfxStatus s = get_any(h, n, T_INT, i, &v[i]);
        if (s) return s;
    }
    return kOfxStatOK;
}
static OfxStatus pReset(OfxPropertySetHandle h, const char *n) { return find(h, n) ? kOfxStatOK : kOfxStatErrUnknown; }
static OfxStatus pGetDimension(OfxPropertySetHandle h, const char *n, int *c) {
    prop *p = find(h, n);
    if (!p) return kOfxStatErrUnknown;
    *c = p->dim;
    return kOfxStatOK;
}

static const OfxPropertySuiteV1 g_prop_suite = {
    pSetPointer, pSetString, pSetDouble, pSetInt, pSetPointerN, pSetStringN, pSetDoubleN, pSetIntN, pGetPointer,
    pGetString,  pGetDouble, pGetInt,    pGetPointerN, pGetStringN, pGetDoubleN, pGetIntN, pReset,  pGetDimension,
};

/* ------------------------------------------------------------------ params */
#define MAX_PARAMS 32

struct OfxParamStruct {
    char name[64];
    char type[64];
    pset *props;
    int ival;
    double dval;
};

struct OfxParamSetStruct {
    struct OfxParamStruct params[MAX_PARAMS];
    int n;
    pset *props;
};

static OfxStatus paramDefine(OfxParamSetHandle set, const char *type, const char *name, OfxPropertySetHandle *props) {
    if (!set || !type || !name) return kOfxStatErrBadHandle;
    for (int i = 0; i < set->n; i++)
        if (strcmp(set->params[i].name, name) == 0) return kOfxStatErrExists;
    if (set->n == MAX_PARAMS) return kOfxStatErrMemory;
    struct OfxParamStruct *p = &set->params[set->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->type, sizeof p->type, "%s", type);
    p->props = pset_new();
    pSetString(p->props, kOfxParamPropType, 0, type);
    pSetString(p->props, kOfxPropName, 0, name);
    if (props) *props = p->props;
    return kOfxStatOK;
}

static OfxStatus paramGetHandle(OfxParamSetHandle set, const char *name, OfxParamHandle *h, OfxPropertySetHandle *props) {
    if (!set || !name) return kOfxStatErrBadHandle;
    for (int i = 0; i < set->n; i++)
        if (strcmp(set->params[i].name, name) == 0) {
            if (h) *h = &set->params[i];
            if (props) *props = set->params[i].props;
            return kOfxStatOK;
        }
    return kOfxStatErrUnknown;
}

static OfxStatus paramSetGetPropertySet(OfxParamSetHandle set, OfxPropertySetHandle *props) {
    if (!set) return kOfxStatErrBadHandle;
    *props = set->props;
    return kOfxStatOK;
}

static OfxStatus paramGetPropertySet(OfxParamHandle p, OfxPropertySetHandle *props) {
    if (!p) return kOfxStatErrBadHandle;
    *props = p->props;
    return kOfxStatOK;
}

static int is_double_param(const OfxParamHandle p) { return strcmp(p->type, kOfxParamTypeDouble) == 0; }

static OfxStatus get_value(OfxParamHandle p, va_list ap) {
    if (!p) return kOfxStatErrBadHandle;
    if (is_double_param(p))
        *va_arg(ap, double *) = p->dval;
    else
        *va_arg(ap, int *) = p->ival;
    return kOfxStatOK;
}

static OfxStatus paramGetValue(OfxParamHandle p, ...) {
    va_list ap;
    va_start(ap, p);
    OfxStatus s = get_value(p, ap);
    va_end(ap);
    return s;
}

static OfxStatus paramGetValueAtTime(OfxParamHandle p, OfxTime t, ...) {
    va_list ap;
    va_start(ap, t);
    OfxStatus s = get_value(p, ap);
    va_end(ap);
    return s;
}

static OfxStatus set_value(OfxParamHandle p, va_list ap) {
    if (!p) return kOfxStatErrBadHandle;
    if (is_double_param(p))
        p->dval = va_arg(ap, double);
    else
        p->ival = va_arg(ap, int);
    return kOfxStatOK;
}

static OfxStatus paramSetValue(OfxParamHandle p, ...) {
    va_list ap;
    va_start(ap, p);
    OfxStatus s = set_value(p, ap);
    va_end(ap);
    return s;
}

static OfxStatus paramSetValueAtTime(OfxParamHandle p, OfxTime t, ...) {
    va_list ap;
    va_start(ap, t);
    OfxStatus s = set_value(p, ap);
    va_end(ap);
    return s;
}

/* keyframes, derivatives, integrals and edit groups: not needed by a plugin that only reads values */
static OfxStatus no_derivative(OfxParamHandle p, OfxTime t, ...) { return kOfxStatErrUnsupported; }
static OfxStatus no_integral(OfxParamHandle p, OfxTime a, OfxTime b, ...) { return kOfxStatErrUnsupported; }
static OfxStatus no_num_keys(OfxParamHandle p, unsigned int *n) { return kOfxStatErrUnsupported; }
static OfxStatus no_key_time(OfxParamHandle p, unsigned int i, OfxTime *t) { return kOfxStatErrUnsupported; }
static OfxStatus no_key_index(OfxParamHandle p, OfxTime t, int d, int *i) { return kOfxStatErrUnsupported; }
static OfxStatus no_delete_key(OfxParamHandle p, OfxTime t) { return kOfxStatErrUnsupported; }
static OfxStatus no_delete_all(OfxParamHandle p) { return kOfxStatErrUnsupported; }
static OfxStatus no_copy(OfxParamHandle a, OfxParamHandle b, OfxTime t, const OfxRangeD *r) { return kOfxStatErrUnsupported; }
static OfxStatus edit_begin(OfxParamSetHandle s, const char *n) { return kOfxStatOK; }
static OfxStatus edit_end(OfxParamSetHandle s) { return kOfxStatOK; }

static const OfxParameterSuiteV1 g_param_suite = {
    paramDefine,  paramGetHandle, paramSetGetPropertySet, paramGetPropertySet, paramGetValue, paramGetValueAtTime,
    no_derivative, no_integral,   paramSetValue,          paramSetValueAtTime, no_num_keys,   no_key_time,
    no_key_index, no_delete_key,  no_delete_all,          no_copy,             edit_begin,    edit_end,
};

/* ------------------------------------------------------------------ effects, clips, images */
#define MAX_FRAMES 64

typedef struct frame {
    double time;
    unsigned generation; /* new content, new kOfxImagePropUniqueIdentifier */
    uint8_t *data; /* pixel (b[0], b[1]) */
    int row_bytes, b[4], depth, ncomp, premult;
} frame;

struct OfxImageClipStruct {
    char name[32];
    pset *props;
};

struct OfxImageEffectStruct {
    pset *props;
    struct OfxParamSetStruct params;
    struct OfxImageClipStruct clips[2];
    int nclips;
};

static struct OfxImageEffectStruct g_desc, g_inst;
static frame g_frames[MAX_FRAMES];
static int g_nframes;
static frame g_output;
static double g_par = 1.0, g_rs[2] = {1.0, 1.0};
static double g_roi[4];     /* source RoI for the current render, canonical */
static int g_have_roi;
static int g_abort_flag, g_open_images, g_get_image_calls;
static char *g_messages;
static size_t g_messages_len;

static OfxStatus getPropertySet(OfxImageEffectHandle e, OfxPropertySetHandle *p) {
    if (!e || !p) return kOfxStatErrBadHandle;
    *p = e->props;
    return kOfxStatOK;
}

static OfxStatus getParamSet(OfxImageEffectHandle e, OfxParamSetHandle *p) {
    if (!e || !p) return kOfxStatErrBadHandle;
    *p = &e->params;
    return kOfxStatOK;
}

static OfxStatus clipDefine(OfxImageEffectHandle e, const char *name, OfxPropertySetHandle *p) {
    if (!e || !name || e->nclips == 2) return kOfxStatErrBadHandle;
    struct OfxImageClipStruct *c = &e->clips[e->nclips++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->props = pset_new();
    pSetString(c->props, kOfxPropName, 0, name);
    if (p) *p = c->props;
    return kOfxStatOK;
}

static OfxStatus clipGetHandle(OfxImageEffectHandle e, const char *name, OfxImageClipHandle *clip,
                               OfxPropertySetHandle *p) {
    if (!e || !name) return kOfxStatErrBadHandle;
    for (int i = 0; i < e->nclips; i++)
        if (strcmp(e->clips[i].name, name) == 0) {
            if (clip) *clip = &e->clips[i];
            if (p) *p = e->clips[i].props;
            return kOfxStatOK;
        }
    return kOfxStatErrUnknown;
}

static OfxStatus clipGetPropertySet(OfxImageClipHandle c, OfxPropertySetHandle *p) {
    if (!c || !p) return kOfxStatErrBadHandle;
    *p = c->props;
    return kOfxStatOK;
}

static const char *depth_name(int d) { return d == 4 ? kOfxBitDepthFloat : d == 2 ? kOfxBitDepthShort : kOfxBitDepthByte; }

/* pixel bounds -> canonical coordinates (x also times the pixel aspect ratio) */
static void to_canonical(const int *b, double *r) {
    r[0] = b[0] * g_par / g_rs[0];
    r[1] = b[1] / g_rs[1];
    r[2] = b[2] * g_par / g_rs[0];
    r[3] = b[3] / g_rs[1];
}

static void to_pixels(const double *r, int *b) {
    b[0] = (int)floor(r[0] * g_rs[0] / g_par + 1e-9);
    b[1] = (int)floor(r[1] * g_rs[1] + 1e-9);
    b[2] = (int)ceil(r[2] * g_rs[0] / g_par - 1e-9);
    b[3] = (int)ceil(r[3] * g_rs[1] - 1e-9);
}

static frame *frame_at(double t) {
    for (int i = 0; i < g_nframes; i++)
        if (fabs(g_frames[i].time - t) < 1e-6) return &g_frames[i];
    return NULL;
}

static pset *image_props(const frame *f, const int *bounds) {
    pset *p = pset_new();
    const int px = f->depth * f->ncomp;
    uint8_t *data = f->data + (ptrdiff_t)(bounds[1] - f->b[1]) * f->row_bytes + (ptrdiff_t)(bounds[0] - f->b[0]) * px;
    pSetString(p, kOfxPropType, 0, "OfxTypeImage");
    pSetPointer(p, kOfxImagePropData, 0, data);
    pSetInt(p, kOfxImagePropRowBytes, 0, f->row_bytes);
    pSetIntN(p, kOfxImagePropBounds, 4, bounds);
    pSetIntN(p, kOfxImagePropRegionOfDefinition, 4, f->b);
    pSetString(p, kOfxImageEffectPropPixelDepth, 0, depth_name(f->depth));
    pSetString(p, kOfxImageEffectPropComponents, 0, f->ncomp == 4 ? kOfxImageComponentRGBA : kOfxImageComponentRGB);
    pSetString(p, kOfxImageEffectPropPreMultiplication, 0,
               f->ncomp == 3 ? kOfxImageOpaque : f->premult ? kOfxImagePreMultiplied : kOfxImageUnPreMultiplied);
    pSetDouble(p, kOfxImagePropPixelAspectRatio, 0, g_par);
    pSetDoubleN(p, kOfxImageEffectPropRenderScale, 2, g_rs);
    pSetString(p, kOfxImagePropField, 0, "OfxFieldNone");
    char uid[64];
    snprintf(uid, sizeof uid, "headless-%u", f->generation);
    pSetString(p, kOfxImagePropUniqueIdentifier, 0, uid);
    return p;
}

static OfxStatus clipGetImage(OfxImageClipHandle c, OfxTime t, const OfxRectD *region, OfxPropertySetHandle *img) {
    if (!c || !img) return kOfxStatErrBadHandle;
    g_get_image_calls++;
    const frame *f;
    int b[4];
    if (strcmp(c->name, kOfxImageEffectOutputClipName) == 0) {
        f = &g_output;
        memcpy(b, f->b, sizeof b);
    } else {
        f = frame_at(t);
        if (!f) return kOfxStatFailed; /* no such frame: the spec says treat it as black */
        /* a real host hands out only what was asked for: the RoI (or region), clipped to the frame */
        memcpy(b, f->b, sizeof b);
        double r[4];
        int want[4];
        if (region || g_have_roi) {
            if (region) {
                r[0] = region->x1, r[1] = region->y1, r[2] = region->x2, r[3] = region->y2;
            } else {
                memcpy(r, g_roi, sizeof r);
            }
            to_pixels(r, want);
            b[0] = want[0] > f->b[0] ? want[0] : f->b[0];
            b[1] = want[1] > f->b[1] ? want[1] : f->b[1];
            b[2] = want[2] < f->b[2] ? want[2] : f->b[2];
            b[3] = want[3] < f->b[3] ? want[3] : f->b[3];
            if (b[2] < b[0]) b[2] = b[0];
            if (b[3] < b[1]) b[3] = b[1];
        }
    }
    if (!f->data) return kOfxStatFailed;
    *img = image_props(f, b);
    g_open_images++;
    return kOfxStatOK;
}

static OfxStatus clipReleaseImage(OfxPropertySetHandle img) {
    if (!img) return kOfxStatErrBadHandle;
    pset_free(img);
    g_open_images--;
    return kOfxStatOK;
}

static OfxStatus clipGetRegionOfDefinition(OfxImageClipHandle c, OfxTime t, OfxRectD *rod) {
    if (!c || !rod) return kOfxStatErrBadHandle;
    const frame *f = frame_at(t);
    if (!f && g_nframes) f = &g_frames[0];
    if (!f) return kOfxStatFailed;
    double r[4];
    to_canonical(f->b, r);
    rod->x1 = r[0], rod->y1 = r[1], rod->x2 = r[2], rod->y2 = r[3];
    return kOfxStatOK;
}

static int abort_fn(OfxImageEffectHandle e) { return g_abort_flag; }

static OfxStatus imageMemoryAlloc(OfxImageEffectHandle e, size_t n, OfxImageMemoryHandle *h) {
    *h = (OfxImageMemoryHandle)malloc(n ? n : 1);
    return *h ? kOfxStatOK : kOfxStatErrMemory;
}
static OfxStatus imageMemoryFree(OfxImageMemoryHandle h) {
    free(h);
    return kOfxStatOK;
}
static OfxStatus imageMemoryLock(OfxImageMemoryHandle h, void **p) {
    *p = h;
    return kOfxStatOK;
}
static OfxStatus imageMemoryUnlock(OfxImageMemoryHandle h) { return kOfxStatOK; }

static const OfxImageEffectSuiteV1 g_effect_suite = {
    getPropertySet, getParamSet,     clipDefine,       clipGetHandle,   clipGetPropertySet,
    clipGetImage,   clipReleaseImage, clipGetRegionOfDefinition, abort_fn, imageMemoryAlloc,
    imageMemoryFree, imageMemoryLock, imageMemoryUnlock,
};

/* ------------------------------------------------------------------ messages, memory, threads */
static void log_message(const char *type, const char *id, const char *fmt, va_list ap) {
    char text[2048];
    vsnprintf(text, sizeof text, fmt ? fmt : "", ap);
    char line[2300];
    int n = snprintf(line, sizeof line, "%s|%s|%s\n", type ? type : "", id ? id : "", text);
    if (n < 0) return;
    g_messages = (char *)realloc(g_messages, g_messages_len + (size_t)n + 1);
    memcpy(g_messages + g_messages_len, line, (size_t)n + 1);
    g_messages_len += (size_t)n;
}

static OfxStatus message(void *h, const char *type, const char *id, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_message(type, id, fmt, ap);
    va_end(ap);
    return kOfxStatOK;
}

static OfxStatus setPersistentMessage(void *h, const char *type, const char *id, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_message(type, id, fmt, ap);
    va_end(ap);
    return kOfxStatOK;
}

static OfxStatus clearPersistentMessage(void *h) {
    static const char line[] = "clear||\n";
    g_messages = (char *)realloc(g_messages, g_messages_len + sizeof line);
    memcpy(g_messages + g_messages_len, line, sizeof line);
    g_messages_len += sizeof line - 1;
    return kOfxStatOK;
}

static const OfxMessageSuiteV1 g_msg1 = {message};
static const OfxMessageSuiteV2 g_msg2 = {message, setPersistentMessage, clearPersistentMessage};

static OfxStatus memoryAlloc(void *h, size_t n, void **p) {
    *p = malloc(n ? n : 1);
    return *p ? kOfxStatOK : kOfxStatErrMemory;
}
static OfxStatus memoryFree(void *p) {
    free(p);
    return kOfxStatOK;
}
static const OfxMemorySuiteV1 g_memory = {memoryAlloc, memoryFree};

static OfxStatus multiThread(OfxThreadFunctionV1 f, unsigned int n, void *arg) {
    for (unsigned i = 0; i < (n ? n : 1); i++) {
        OfxStatus s = f(i, n ? n : 1, arg);
        if (s) return s;
    }
    return kOfxStatOK;
}
static OfxStatus numCPUs(unsigned int *n) {
    *n = 1;
    return kOfxStatOK;
}
static OfxStatus threadIndex(unsigned int *i) {
    *i = 0;
    return kOfxStatOK;
}
static int isSpawned(void) { return 0; }
static OfxStatus mutexCreate(OfxMutexHandle *m, int c) {
    *m = (OfxMutexHandle)malloc(1);
    return kOfxStatOK;
}
static OfxStatus mutexDestroy(const OfxMutexHandle m) {
    free(m);
    return kOfxStatOK;
}
static OfxStatus mutexNoop(const OfxMutexHandle m) { return kOfxStatOK; }
static const OfxMultiThreadSuiteV1 g_mt = {multiThread, numCPUs, threadIndex, isSpawned, mutexCreate,
                                           mutexDestroy, mutexNoop, mutexNoop, mutexNoop};

/* ------------------------------------------------------------------ host and actions */
static pset *g_host_props;
static OfxHost g_host;
static void *g_lib;
static OfxPlugin *g_plugin;
static int g_loaded, g_instance_live;

static const void *fetchSuite(OfxPropertySetHandle host, const char *name, int version) {
    if (!name) return NULL;
    if (strcmp(name, kOfxPropertySuite) == 0 && version == 1) return &g_prop_suite;
    if (strcmp(name, kOfxImageEffectSuite) == 0 && version == 1) return &g_effect_suite;
    if (strcmp(name, kOfxParameterSuite) == 0 && version == 1) return &g_param_suite;
    if (strcmp(name, kOfxMessageSuite) == 0 && version == 1) return &g_msg1;
    if (strcmp(name, kOfxMessageSuite) == 0 && version == 2) return &g_msg2;
    if (strcmp(name, kOfxMemorySuite) == 0 && version == 1) return &g_memory;
    if (strcmp(name, kOfxMultiThreadSuite) == 0 && version == 1) return &g_mt;
    return NULL;
}

static OfxStatus call(const char *action, const void *handle, pset *in, pset *out) {
    return g_plugin->mainEntry(action, handle, in, out);
}

static void effect_init(struct OfxImageEffectStruct *e) {
    memset(e, 0, sizeof *e);
    e->props = pset_new();
    e->params.props = pset_new();
}

static void effect_free(struct OfxImageEffectStruct *e) {
    pset_free(e->props);
    pset_free(e->params.props);
    for (int i = 0; i < e->params.n; i++) pset_free(e->params.params[i].props);
    for (int i = 0; i < e->nclips; i++) pset_free(e->clips[i].props);
    memset(e, 0, sizeof *e);
}

API int host_load(const char *path, char *err, int errlen) {
    g_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!g_lib) {
        snprintf(err, (size_t)errlen, "dlopen: %s", dlerror());
        return -1;
    }
    OfxGetNumberOfPluginsFn count = (OfxGetNumberOfPluginsFn)dlsym(g_lib, "OfxGetNumberOfPlugins");
    OfxGetPluginFn get = (OfxGetPluginFn)dlsym(g_lib, "OfxGetPlugin");
    if (!count || !get || count() < 1 || !(g_plugin = get(0))) {
        snprintf(err, (size_t)errlen, "not an OFX binary (OfxGetNumberOfPlugins/OfxGetPlugin)");
        return -1;
    }
    if (strcmp(g_plugin->pluginApi, kOfxImageEffectPluginApi) != 0 || g_plugin->apiVersion != 1) {
        snprintf(err, (size_t)errlen, "unexpected plugin API %s v%d", g_plugin->pluginApi, g_plugin->apiVersion);
        return -1;
    }
    g_host_props = pset_new();
    pSetString(g_host_props, kOfxPropName, 0, "org.vdiff.headless");
    pSetString(g_host_props, kOfxPropLabel, 0, "vdiff headless host");
    pSetInt(g_host_props, kOfxImageEffectHostPropIsBackground, 0, 1);
    pSetInt(g_host_props, kOfxImageEffectPropSupportsTiles, 0, 1);
    pSetInt(g_host_props, kOfxImageEffectPropTemporalClipAccess, 0, 1);
    pSetInt(g_host_props, kOfxImageEffectPropSupportsMultiResolution, 0, 1);
    pSetInt(g_host_props, kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0);
    const char *depths[] = {kOfxBitDepthFloat, kOfxBitDepthShort, kOfxBitDepthByte};
    pSetStringN(g_host_props, kOfxImageEffectPropSupportedPixelDepths, 3, depths);
    const char *comps[] = {kOfxImageComponentRGBA, kOfxImageComponentRGB};
    pSetStringN(g_host_props, kOfxImageEffectPropSupportedComponents, 2, comps);
    const char *contexts[] = {kOfxImageEffectContextFilter, kOfxImageEffectContextGeneral};
    pSetStringN(g_host_props, kOfxImageEffectPropSupportedContexts, 2, contexts);
    const int api[] = {1, 4};
    pSetIntN(g_host_props, kOfxPropAPIVersion, 2, api);
    g_host.host = g_host_props;
    g_host.fetchSuite = fetchSuite;
    g_plugin->setHost(&g_host);

    OfxStatus s = call(kOfxActionLoad, NULL, NULL, NULL);
    if (s != kOfxStatOK && s != kOfxStatReplyDefault) {
        snprintf(err, (size_t)errlen, "load action failed (%d)", s);
        return -1;
    }
    g_loaded = 1;
    effect_init(&g_desc);
    s = call(kOfxActionDescribe, &g_desc, NULL, NULL);
    if (s != kOfxStatOK && s != kOfxStatReplyDefault) {
        snprintf(err, (size_t)errlen, "describe failed (%d)", s);
        return -1;
    }
    pset *in = pset_new();
    pSetString(in, kOfxImageEffectPropContext, 0, kOfxImageEffectContextFilter);
    s = call(kOfxImageEffectActionDescribeInContext, &g_desc, in, NULL);
    pset_free(in);
    if (s != kOfxStatOK && s != kOfxStatReplyDefault) {
        snprintf(err, (size_t)errlen, "describeInContext(filter) failed (%d)", s);
        return -1;
    }
    return 0;
}

/* Clip and image format the next frames will have (also what the clip properties report). */
API void host_set_clip_format(int depth, int ncomp, int premult, double par, double first, double last) {
    g_par = par > 0 ? par : 1.0;
    for (int i = 0; i < g_inst.nclips; i++) {
        pset *p = g_inst.clips[i].props;
        pSetString(p, kOfxImageEffectPropPixelDepth, 0, depth_name(depth));
        pSetString(p, kOfxImageEffectPropComponents, 0, ncomp == 4 ? kOfxImageComponentRGBA : kOfxImageComponentRGB);
        pSetString(p, kOfxImageEffectPropPreMultiplication, 0,
                   ncomp == 3 ? kOfxImageOpaque : premult ? kOfxImagePreMultiplied : kOfxImageUnPreMultiplied);
        pSetDouble(p, kOfxImagePropPixelAspectRatio, 0, g_par);
        double range[2] = {first, last};
        pSetDoubleN(p, kOfxImageEffectPropFrameRange, 2, range);
        pSetInt(p, kOfxImageClipPropConnected, 0, 1);
    }
}

API int host_create_instance(void) {
    effect_init(&g_inst);
    pSetString(g_inst.props, kOfxPropType, 0, "OfxTypeImageEffectInstance");
    pSetString(g_inst.props, kOfxImageEffectPropContext, 0, kOfxImageEffectContextFilter);
    pSetInt(g_inst.props, kOfxPropIsInteractive, 0, 0);
    pSetDouble(g_inst.props, kOfxImageEffectPropProjectPixelAspectRatio, 0, 1.0);
    pSetPointer(g_inst.props, kOfxPropInstanceData, 0, NULL);
    /* instance params start from the descriptor's defaults */
    for (int i = 0; i < g_desc.params.n; i++) {
        struct OfxParamStruct *d = &g_desc.params.params[i], *p = &g_inst.params.params[i];
        *p = *d;
        p->props = pset_new();
        for (int k = 0; k < d->props->n; k++) {
            prop *src = &d->props->items[k];
            for (int j = 0; j < src->dim; j++) {
                switch (src->type) {
                case T_INT: set_any(p->props, src->name, T_INT, j, &src->v.i[j]); break;
                case T_DOUBLE: set_any(p->props, src->name, T_DOUBLE, j, &src->v.d[j]); break;
                case T_STRING: set_any(p->props, src->name, T_STRING, j, &src->v.s[j]); break;
                case T_POINTER: set_any(p->props, src->name, T_POINTER, j, &src->v.p[j]); break;
                }
            }
        }
        if (is_double_param(p))
            pGetDouble(d->props, kOfxParamPropDefault, 0, &p->dval);
        else
            pGetInt(d->props, kOfxParamPropDefault, 0, &p->ival);
    }
    g_inst.params.n = g_desc.params.n;
    for (int i = 0; i < g_desc.nclips; i++) clipDefine(&g_inst, g_desc.clips[i].name, NULL);
    host_set_clip_format(4, 4, 0, 1.0, 0, 0);
    OfxStatus s = call(kOfxActionCreateInstance, &g_inst, NULL, NULL);
    g_instance_live = (s == kOfxStatOK || s == kOfxStatReplyDefault);
    return s;
}

API int host_destroy_instance(void) {
    if (!g_instance_live) return 0;
    OfxStatus s = call(kOfxActionDestroyInstance, &g_inst, NULL, NULL);
    g_instance_live = 0;
    effect_free(&g_inst);
    return s;
}

API int host_unload(void) {
    host_destroy_instance();
    OfxStatus s = g_loaded ? call(kOfxActionUnload, NULL, NULL, NULL) : 0;
    g_loaded = 0;
    effect_free(&g_desc);
    pset_free(g_host_props);
    g_host_props = NULL;
    if (g_lib) dlclose(g_lib);
    g_lib = NULL;
    g_plugin = NULL;
    g_nframes = 0;
    free(g_messages);
    g_messages = NULL;
    g_messages_len = 0;
    return s;
}

/* ---- descriptor queries ---- */
API int host_descriptor_string(const char *name, int idx, char *out, int n) {
    char *v = NULL;
    if (pGetString(g_desc.props, name, idx, &v) != kOfxStatOK || !v) return -1;
    snprintf(out, (size_t)n, "%s", v);
    return 0;
}

API int host_descriptor_int(const char *name, int idx, int *out) { return pGetInt(g_desc.props, name, idx, out); }

API int host_clip_descriptor_string(const char *clip, const char *name, int idx, char *out, int n) {
    for (int i = 0; i < g_desc.nclips; i++)
        if (strcmp(g_desc.clips[i].name, clip) == 0) {
            char *v = NULL;
            if (pGetString(g_desc.clips[i].props, name, idx, &v) != kOfxStatOK || !v) return -1;
            snprintf(out, (size_t)n, "%s", v);
            return 0;
        }
    return -1;
}

API int host_param_count(void) { return g_desc.params.n; }

API int host_param_info(int i, char *name, char *type, int n) {
    if (i < 0 || i >= g_desc.params.n) return -1;
    snprintf(name, (size_t)n, "%s", g_desc.params.params[i].name);
    snprintf(type, (size_t)n, "%s", g_desc.params.params[i].type);
    return 0;
}

/* choice options joined by '\n' */
API int host_param_options(const char *param, char *out, int n) {
    OfxParamHandle h;
    OfxPropertySetHandle p;
    if (paramGetHandle(&g_desc.params, param, &h, &p)) return -1;
    int dim = 0;
    out[0] = 0;
    if (pGetDimension(p, kOfxParamPropChoiceOption, &dim)) return 0;
    size_t used = 0;
    for (int i = 0; i < dim; i++) {
        char *v = NULL;
        pGetString(p, kOfxParamPropChoiceOption, i, &v);
        int k = snprintf(out + used, (size_t)n - used, "%s%s", i ? "\n" : "", v ? v : "");
        if (k < 0 || (size_t)k >= (size_t)n - used) return -1;
        used += (size_t)k;
    }
    return dim;
}

API int host_set_param_int(const char *name, int v) {
    OfxParamHandle h;
    if (paramGetHandle(&g_inst.params, name, &h, NULL)) return -1;
    if (is_double_param(h)) return -2;
    h->ival = v;
    return 0;
}

API int host_set_param_double(const char *name, double v) {
    OfxParamHandle h;
    if (paramGetHandle(&g_inst.params, name, &h, NULL)) return -1;
    if (!is_double_param(h)) return -2;
    h->dval = v;
    return 0;
}

/* ---- frames ---- */
API void host_clear_frames(void) { g_nframes = 0; }

/* data points at pixel (x1, y1), the bottom-left; row_bytes may be negative */
API int host_add_frame(double time, void *data, int row_bytes, int x1, int y1, int x2, int y2, int depth, int ncomp,
                       int premult) {
    frame *f = frame_at(time);
    if (!f) {
        if (g_nframes == MAX_FRAMES) return -1;
        f = &g_frames[g_nframes++];
    }
    static unsigned generation = 0;
    *f = (frame){time, ++generation, (uint8_t *)data, row_bytes, {x1, y1, x2, y2}, depth, ncomp, premult};
    return 0;
}

API void host_set_render_scale(double sx, double sy) {
    g_rs[0] = sx;
    g_rs[1] = sy;
}

API void host_set_abort(int v) { g_abort_flag = v; }

API void host_set_interactive(int v) { pSetInt(g_inst.props, kOfxPropIsInteractive, 0, v); }

/* ---- actions ---- */
API int host_region_of_definition(double t, double *rod) {
    pset *in = pset_new(), *out = pset_new();
    pSetDouble(in, kOfxPropTime, 0, t);
    pSetDoubleN(in, kOfxImageEffectPropRenderScale, 2, g_rs);
    OfxRectD src = {0, 0, 0, 0};
    OfxImageClipHandle c;
    clipGetHandle(&g_inst, kOfxImageEffectSimpleSourceClipName, &c, NULL);
    clipGetRegionOfDefinition(c, t, &src);
    double def[4] = {src.x1, src.y1, src.x2, src.y2};
    pSetDoubleN(out, kOfxImageEffectPropRegionOfDefinition, 4, def);
    OfxStatus s = call(kOfxImageEffectActionGetRegionOfDefinition, &g_inst, in, out);
    pGetDoubleN(out, kOfxImageEffectPropRegionOfDefinition, 4, rod);
    pset_free(in);
    pset_free(out);
    return s;
}

API int host_frames_needed(double t, double *range) {
    pset *in = pset_new(), *out = pset_new();
    pSetDouble(in, kOfxPropTime, 0, t);
    double def[2] = {t, t};
    pSetDoubleN(out, kOfxImageEffectFrameRangePrefix kOfxImageEffectSimpleSourceClipName, 2, def);
    OfxStatus s = call(kOfxImageEffectActionGetFramesNeeded, &g_inst, in, out);
    pGetDoubleN(out, kOfxImageEffectFrameRangePrefix kOfxImageEffectSimpleSourceClipName, 2, range);
    pset_free(in);
    pset_free(out);
    return s;
}

API int host_is_identity(double t, const int *window, char *clip, int n, double *time_out) {
    pset *in = pset_new(), *out = pset_new();
    pSetDouble(in, kOfxPropTime, 0, t);
    pSetString(in, kOfxImageEffectPropFieldToRender, 0, "OfxFieldNone");
    pSetIntN(in, kOfxImageEffectPropRenderWindow, 4, window);
    pSetDoubleN(in, kOfxImageEffectPropRenderScale, 2, g_rs);
    pSetString(out, kOfxPropName, 0, "");
    pSetDouble(out, kOfxPropTime, 0, t);
    OfxStatus s = call(kOfxImageEffectActionIsIdentity, &g_inst, in, out);
    char *name = NULL;
    pGetString(out, kOfxPropName, 0, &name);
    snprintf(clip, (size_t)n, "%s", name ? name : "");
    pGetDouble(out, kOfxPropTime, 0, time_out);
    pset_free(in);
    pset_free(out);
    return s;
}

API int host_clip_preferences(char *comps, int n) {
    pset *out = pset_new();
    OfxStatus s = call(kOfxImageEffectActionGetClipPreferences, &g_inst, NULL, out);
    char *v = NULL;
    pGetString(out, kOfxImageClipPropComponentsPrefix kOfxImageEffectOutputClipName, 0, &v);
    snprintf(comps, (size_t)n, "%s", v ? v : "");
    pset_free(out);
    return s;
}

/* Render window (pixel coords) of time t into the output buffer (data at pixel (ox1, oy1)).
 * flags: bit 0 draft, bit 1 interactive render, bit 2 sequential render. */
API int host_render(double t, const int *window, void *out_data, int out_row_bytes, const int *out_bounds,
                    int out_depth, int out_ncomp, int out_premult, int flags) {
    g_output = (frame){t, 0, (uint8_t *)out_data, out_row_bytes, {out_bounds[0], out_bounds[1], out_bounds[2], out_bounds[3]},
                       out_depth, out_ncomp, out_premult};
    /* region of interest first, as hosts do; the source images then cover just that */
    pset *in = pset_new(), *out = pset_new();
    double win_c[4];
    to_canonical(window, win_c);
    pSetDouble(in, kOfxPropTime, 0, t);
    pSetDoubleN(in, kOfxImageEffectPropRenderScale, 2, g_rs);
    pSetDoubleN(in, kOfxImageEffectPropRegionOfInterest, 4, win_c);
    pSetDoubleN(out, kOfxImageEffectRegionOfInterestPrefix kOfxImageEffectSimpleSourceClipName, 4, win_c);
    OfxStatus s = call(kOfxImageEffectActionGetRegionsOfInterest, &g_inst, in, out);
    if (s != kOfxStatOK && s != kOfxStatReplyDefault) {
        pset_free(in);
        pset_free(out);
        return s;
    }
    /* default RoI of a filter: the render window itself */
    pGetDoubleN(out, kOfxImageEffectRegionOfInterestPrefix kOfxImageEffectSimpleSourceClipName, 4, g_roi);
    g_have_roi = 1;
    pset_free(in);
    pset_free(out);

    in = pset_new();
    pSetDouble(in, kOfxPropTime, 0, t);
    pSetString(in, kOfxImageEffectPropFieldToRender, 0, "OfxFieldNone");
    pSetIntN(in, kOfxImageEffectPropRenderWindow, 4, window);
    pSetDoubleN(in, kOfxImageEffectPropRenderScale, 2, g_rs);
    pSetInt(in, kOfxImageEffectPropRenderQualityDraft, 0, flags & 1);
    pSetInt(in, kOfxImageEffectPropInteractiveRenderStatus, 0, (flags >> 1) & 1);
    pSetInt(in, kOfxImageEffectPropSequentialRenderStatus, 0, (flags >> 2) & 1);
    s = call(kOfxImageEffectActionRender, &g_inst, in, NULL);
    pset_free(in);
    g_have_roi = 0;
    return s;
}

/* ---- inspection ---- */
API const char *host_messages(void) { return g_messages ? g_messages : ""; }
API void host_clear_messages(void) {
    free(g_messages);
    g_messages = NULL;
    g_messages_len = 0;
}
API int host_open_images(void) { return g_open_images; }
API int host_get_image_calls(void) { return g_get_image_calls; }
API int host_bad_prop_calls(void) { return g_bad_prop_calls; }
