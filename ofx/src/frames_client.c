/* Frame protocol client: byte layouts are written field by field, little-endian, exactly as
 * docs/frame-protocol.md tables them (no struct packing tricks, so any compiler gets it right). */
#include "frames_client.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- little-endian buffer writer/reader ---- */
typedef struct wbuf {
    uint8_t data[VD_MAX_PAYLOAD];
    size_t len;
    int overflow;
} wbuf;

static void put(wbuf *b, const void *p, size_t n) {
    if (b->len + n > sizeof b->data) {
        b->overflow = 1;
        return;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
static void put_u16(wbuf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}
static void put_u32(wbuf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void put_u64(wbuf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_f32(wbuf *b, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(b, v);
}
static void put_str(wbuf *b, const char *s) {
    size_t n = strlen(s);
    if (n > 0xFFFF) {
        b->overflow = 1;
        return;
    }
    put_u16(b, (uint16_t)n);
    put(b, s, n);
}

typedef struct rbuf {
    const uint8_t *data;
    size_t len, pos;
    int bad;
} rbuf;

static const uint8_t *take(rbuf *r, size_t n) {
    if (r->pos + n > r->len) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->data + r->pos;
    r->pos += n;
    return p;
}
static uint16_t get_u16(rbuf *r) {
    const uint8_t *p = take(r, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}
static uint32_t get_u32(rbuf *r) {
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}
static float get_f32(rbuf *r) {
    uint32_t v = get_u32(r);
    float f;
    memcpy(&f, &v, 4);
    return f;
}
static void get_str(rbuf *r, char *out, size_t cap) {
    uint16_t n = get_u16(r);
    const uint8_t *p = take(r, n);
    if (!out || !cap) return;
    size_t k = p ? (n < cap - 1 ? n : cap - 1) : 0;
    if (k) memcpy(out, p, k);
    out[k] = 0;
}

void vd_conn_init(vd_conn *c) {
    memset(c, 0, sizeof *c);
    c->sock = VD_NO_SOCKET;
    c->next_id = 1;
    c->request_timeout_ms = 10000;
    c->process_timeout_ms = 300000;
}

int vd_conn_alive(const vd_conn *c) { return c->sock != VD_NO_SOCKET; }

static void drop(vd_conn *c) {
    vd_close_socket(c->sock);
    c->sock = VD_NO_SOCKET;
}

static const char *code_name(uint32_t code) {
    static const char *names[] = {"",          "BAD_MAGIC",    "BAD_VERSION",   "NOT_AUTHENTICATED", "BAD_TOKEN",
                                  "TOO_LARGE", "UNKNOWN_OP",   "BAD_REQUEST",   "UNKNOWN_MODEL",     "BAD_SESSION",
                                  "BAD_FORMAT", "BAD_GEOMETRY", "SHM",          "MODEL_ERROR",       "INTERNAL"};
    return code < sizeof names / sizeof names[0] ? names[code] : "UNKNOWN";
}

/* Send one request and read its response into resp (payload up to VD_MAX_PAYLOAD). Any transport
 * failure drops the connection: the protocol has no way to resync a half-read stream. */
static int call(vd_conn *c, uint16_t op, const wbuf *req, uint8_t *resp, size_t resp_cap, size_t *resp_len,
                int timeout_ms,
                vd_abort_fn abort_fn, void *abort_ctx, vd_err *err) {
    c->last_code = 0;
    if (c->sock == VD_NO_SOCKET) {
        vd_set_err(err, "not connected to the vdiff frame server");
        return -1;
    }
    if (req && req->overflow) {
        vd_set_err(err, "request too large for the frame protocol");
        return -1;
    }
    uint32_t id = c->next_id++;
    uint8_t hdr[16] = {'V', 'D', 'F', 'P', 1, 0, (uint8_t)op, (uint8_t)(op >> 8)};
    uint32_t len = req ? (uint32_t)req->len : 0;
    for (int i = 0; i < 4; i++) {
        hdr[8 + i] = (uint8_t)(id >> (8 * i));
        hdr[12 + i] = (uint8_t)(len >> (8 * i));
    }
    int64_t deadline = vd_now_ms() + timeout_ms;
    if (vd_send_all(c->sock, hdr, 16, deadline, err) || (len && vd_send_all(c->sock, req->data, len, deadline, err))) {
        drop(c);
        return -1;
    }
    uint8_t rh[16];
    if (vd_recv_all(c->sock, rh, 16, deadline, abort_fn, abort_ctx, err)) {
        drop(c);
        return -1;
    }
    uint16_t rop = (uint16_t)(rh[6] | rh[7] << 8);
    uint32_t rid = (uint32_t)rh[8] | (uint32_t)rh[9] << 8 | (uint32_t)rh[10] << 16 | (uint32_t)rh[11] << 24;
    uint32_t rlen = (uint32_t)rh[12] | (uint32_t)rh[13] << 8 | (uint32_t)rh[14] << 16 | (uint32_t)rh[15] << 24;
    if (memcmp(rh, "VDFP", 4) != 0 || rlen > VD_MAX_PAYLOAD || rlen > resp_cap) {
        vd_set_err(err, "the vdiff frame server sent a malformed response");
        drop(c);
        return -1;
    }
    if (rlen && vd_recv_all(c->sock, resp, rlen, deadline, abort_fn, abort_ctx, err)) {
        drop(c);
        return -1;
    }
    *resp_len = rlen;
    if (rop == 0xFFFF) {
        rbuf r = {resp, rlen, 0, 0};
        uint32_t code = get_u32(&r);
        char msg[VD_ERR_MAX - 40];
        get_str(&r, msg, sizeof msg);
        c->last_code = code ? code : 14;
        vd_set_err(err, "%s (%s)", msg[0] ? msg : "frame server error", code_name(code));
        if (code >= 1 && code <= 5) drop(c); /* the server closes after these */
        return -1;
    }
    if (rop != (op | 0x8000) || rid != id) {
        vd_set_err(err, "the vdiff frame server answered out of order");
        drop(c);
        return -1;
    }
    return 0;
}

int vd_conn_open(vd_conn *c, const char *addr, const char *token, const char *client_name, vd_err *err) {
    vd_conn_close(c);
    c->sock = vd_connect(addr, 2000, err);
    if (c->sock == VD_NO_SOCKET) return -1;
    wbuf *b = (wbuf *)calloc(1, sizeof *b);
    uint8_t *resp = (uint8_t *)malloc(VD_MAX_PAYLOAD);
    int rc = -1;
    if (b && resp) {
        put_u16(b, 1);
        put_u16(b, 0);
        put_str(b, token);
        put_str(b, client_name);
        size_t n = 0;
        rc = call(c, VD_OP_HELLO, b, resp, VD_MAX_PAYLOAD, &n, c->request_timeout_ms, NULL, NULL, err);
        if (rc == 0) {
            rbuf r = {resp, n, 0, 0};
            uint16_t version = get_u16(&r);
            if (r.bad || version != 1) {
                vd_set_err(err, "the vdiff frame server speaks protocol %u, this plugin speaks 1", version);
                rc = -1;
            }
        }
    } else {
        vd_set_err(err, "out of memory");
    }
    free(b);
    free(resp);
    if (rc) drop(c);
    return rc;
}

void vd_conn_close(vd_conn *c) {
    if (c->sock == VD_NO_SOCKET) return;
    uint8_t resp[1100];
    size_t n;
    vd_err ignored;
    int saved = c->request_timeout_ms;
    c->request_timeout_ms = 500; /* never hold the host up on the way out */
    if (call(c, VD_OP_BYE, NULL, resp, sizeof resp, &n, c->request_timeout_ms, NULL, NULL, &ignored) != 0) {
        /* BYE's response is bounded: a larger one is an error and call() has dropped the socket */
    }
    c->request_timeout_ms = saved;
    drop(c);
}

int vd_list_models(vd_conn *c, vd_model *out, int max, int *count, vd_err *err) {
    uint8_t *resp = (uint8_t *)malloc(VD_MAX_PAYLOAD);
    if (!resp) {
        vd_set_err(err, "out of memory");
        return -1;
    }
    size_t n = 0;
    int rc = call(c, VD_OP_LIST_MODELS, NULL, resp, VD_MAX_PAYLOAD, &n, c->request_timeout_ms, NULL, NULL, err);
    if (rc == 0) {
        rbuf r = {resp, n, 0, 0};
        uint32_t total = get_u32(&r);
        int k = 0;
        for (uint32_t i = 0; i < total && !r.bad; i++) {
            vd_model m;
            memset(&m, 0, sizeof m);
            m.scale = get_u16(&r);
            m.window = get_u16(&r);
            (void)get_u16(&r); /* size_multiple: the server pads */
            m.has_strength = take(&r, 1) ? r.data[r.pos - 1] : 0;
            (void)take(&r, 1);
            m.strength_min = get_f32(&r);
            m.strength_max = get_f32(&r);
            m.strength_default = get_f32(&r);
            get_str(&r, m.name, sizeof m.name);
            get_str(&r, m.task, sizeof m.task);
            get_str(&r, NULL, 0);
            if (!r.bad && k < max && m.name[0] && m.scale >= 1 && m.window >= 1) out[k++] = m;
        }
        if (r.bad) {
            vd_set_err(err, "malformed LIST_MODELS response");
            rc = -1;
        }
        *count = k;
    }
    free(resp);
    return rc;
}

int vd_open_session(vd_conn *c, const char *model, float strength, uint32_t tile, uint32_t *session, int *scale,
                    int *window, char *provider, size_t provider_len, vd_err *err) {
    wbuf *b = (wbuf *)calloc(1, sizeof *b);
    uint8_t resp[VD_ERR_MAX + 1100];
    if (!b) {
        vd_set_err(err, "out of memory");
        return -1;
    }
    put_f32(b, strength);
    put_u32(b, tile);
    put_u32(b, 0);
    put_str(b, model);
    size_t n = 0;
    /* OPEN loads the model on first use (and may build a TensorRT engine): give it the long timeout */
    int rc = call(c, VD_OP_OPEN, b, resp, sizeof resp, &n, c->process_timeout_ms, NULL, NULL, err);
    free(b);
    if (rc) return rc;
    rbuf r = {resp, n, 0, 0};
    *session = get_u32(&r);
    *scale = get_u16(&r);
    *window = get_u16(&r);
    (void)get_u32(&r);
    get_str(&r, provider, provider_len);
    if (r.bad || *session == 0 || *scale < 1 || *window < 1) {
        vd_set_err(err, "malformed OPEN response");
        return -1;
    }
    return 0;
}

int vd_close_session(vd_conn *c, uint32_t session, vd_err *err) {
    wbuf *b = (wbuf *)calloc(1, sizeof *b);
    uint8_t resp[1100];
    size_t n;
    if (!b) return -1;
    put_u32(b, session);
    int rc = call(c, VD_OP_CLOSE, b, resp, sizeof resp, &n, c->request_timeout_ms, NULL, NULL, err);
    free(b);
    return rc;
}

int vd_process(vd_conn *c, const vd_process_req *q, uint32_t *out_w, uint32_t *out_h, uint32_t *server_us,
               vd_abort_fn abort_fn, void *abort_ctx, vd_err *err) {
    wbuf *b = (wbuf *)calloc(1, sizeof *b);
    uint8_t resp[1100];
    if (!b) {
        vd_set_err(err, "out of memory");
        return -1;
    }
    put_u32(b, q->session);
    put_u32(b, q->width);
    put_u32(b, q->height);
    put_u16(b, q->format);
    put_u16(b, q->count);
    put_u64(b, (uint64_t)q->in_stride);
    put_u64(b, (uint64_t)q->out_stride);
    put_u64(b, q->out_offset);
    for (int i = 0; i < q->count; i++) put_u64(b, q->in_offsets[i]);
    put_str(b, q->in_shm);
    put_str(b, q->out_shm);
    size_t n = 0;
    int rc = call(c, VD_OP_PROCESS, b, resp, sizeof resp, &n, c->process_timeout_ms, abort_fn, abort_ctx, err);
    free(b);
    if (rc) return rc;
    rbuf r = {resp, n, 0, 0};
    *out_w = get_u32(&r);
    *out_h = get_u32(&r);
    *server_us = get_u32(&r);
    if (r.bad) {
        vd_set_err(err, "malformed PROCESS response");
        return -1;
    }
    return 0;
}

int vd_format_pixel_bytes(int format) {
    switch (format) {
    case VD_FMT_RGBA_F32: return 16;
    case VD_FMT_RGB_F32: return 12;
    case VD_FMT_RGBA_U16: return 8;
    case VD_FMT_RGB_U16: return 6;
    default: return 0;
    }
}
