/* A client of the vdiff frame protocol (docs/frame-protocol.md): framing, HELLO, LIST_MODELS, OPEN,
 * PROCESS, CLOSE, BYE. One request in flight per connection; every wait has a deadline. */
#ifndef VDIFF_FRAMES_CLIENT_H
#define VDIFF_FRAMES_CLIENT_H

#include <stdint.h>

#include "platform.h"

enum { VD_OP_HELLO = 1, VD_OP_LIST_MODELS = 2, VD_OP_OPEN = 3, VD_OP_PROCESS = 4, VD_OP_CLOSE = 5, VD_OP_BYE = 6 };
enum { VD_FMT_RGBA_F32 = 1, VD_FMT_RGB_F32 = 2, VD_FMT_RGBA_U16 = 3, VD_FMT_RGB_U16 = 4 };
#define VD_MAX_PAYLOAD 65536
#define VD_MAX_MODELS 64
#define VD_NAME_MAX 128

typedef struct vd_model {
    char name[VD_NAME_MAX];
    char task[32];
    int scale, window, has_strength;
    float strength_min, strength_max, strength_default;
} vd_model;

typedef struct vd_conn {
    vd_socket sock;
    uint32_t next_id;
    int request_timeout_ms; /* HELLO, LIST_MODELS, OPEN, CLOSE */
    int process_timeout_ms; /* PROCESS: model load + inference */
    uint32_t last_code;     /* error code of the last ERROR response, 0 if the failure was local */
} vd_conn;

void vd_conn_init(vd_conn *c);
int vd_conn_open(vd_conn *c, const char *addr, const char *token, const char *client_name, vd_err *err);
void vd_conn_close(vd_conn *c); /* BYE if connected, then close */
int vd_conn_alive(const vd_conn *c);

int vd_list_models(vd_conn *c, vd_model *out, int max, int *count, vd_err *err);
/* strength NaN = model default; tile 0 = automatic */
int vd_open_session(vd_conn *c, const char *model, float strength, uint32_t tile, uint32_t *session, int *scale,
                    int *window, char *provider, size_t provider_len, vd_err *err);
int vd_close_session(vd_conn *c, uint32_t session, vd_err *err);

typedef struct vd_process_req {
    uint32_t session, width, height;
    uint16_t format, count;
    int64_t in_stride, out_stride;
    uint64_t out_offset;
    const uint64_t *in_offsets; /* count entries, top row of each frame */
    const char *in_shm, *out_shm;
} vd_process_req;

int vd_process(vd_conn *c, const vd_process_req *req, uint32_t *out_w, uint32_t *out_h, uint32_t *server_us,
               vd_abort_fn abort_fn, void *abort_ctx, vd_err *err);

int vd_format_pixel_bytes(int format);

#endif
