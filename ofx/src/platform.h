/* The few OS services the plugin needs (sockets with deadlines, shared memory, a detached child process,
 * per-user folders, a mutex), so the rest of the plugin is plain portable C. One implementation per OS:
 * platform_posix.c (Linux, macOS) and platform_win.c. */
#ifndef VDIFF_PLATFORM_H
#define VDIFF_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#define VD_PATH_MAX 4096
#define VD_ERR_MAX 600

typedef struct vd_err {
    char text[VD_ERR_MAX]; /* one line for the user */
} vd_err;

void vd_set_err(vd_err *err, const char *fmt, ...);

/* ---- time ---- */
int64_t vd_now_ms(void); /* monotonic */
void vd_sleep_ms(int ms);

/* ---- sockets ---- */
typedef intptr_t vd_socket;
#define VD_NO_SOCKET ((vd_socket)-1)

/* Called while waiting for a reply; returning non-zero abandons the wait (the host's abort). */
typedef int (*vd_abort_fn)(void *ctx);

/* addr: "unix:/path" or "tcp:127.0.0.1:port" (the frames.addr line). */
vd_socket vd_connect(const char *addr, int timeout_ms, vd_err *err);
/* Whole-buffer I/O; 0 on success, -1 on error, timeout or abort (err says which). */
int vd_send_all(vd_socket s, const void *buf, size_t n, int64_t deadline_ms, vd_err *err);
int vd_recv_all(vd_socket s, void *buf, size_t n, int64_t deadline_ms, vd_abort_fn abort_fn, void *abort_ctx,
                vd_err *err);
void vd_close_socket(vd_socket s);

/* ---- shared memory the plugin owns and the server maps by name ---- */
typedef struct vd_shm {
    char name[96]; /* without leading '/' */
    void *ptr;
    size_t size;
    intptr_t handle; /* fd on POSIX, HANDLE on Windows */
} vd_shm;

/* Make sure seg is at least size bytes (creates it on first use, recreates it larger when needed). */
int vd_shm_reserve(vd_shm *seg, const char *tag, size_t size, vd_err *err);
void vd_shm_release(vd_shm *seg);

/* ---- processes ---- */
/* Start argv detached from the host (own session, no inherited fds, stdio to log_path); does not wait. */
int vd_spawn_detached(char *const argv[], const char *cwd, const char *log_path, vd_err *err);
int vd_process_id(void);

/* ---- files and folders ---- */
int vd_config_dir(char *out, size_t n);  /* per-user vdiff config folder, see docs/frame-protocol.md */
int vd_module_path(char *out, size_t n); /* path of this plugin binary */
char *vd_read_file(const char *path, size_t max_bytes, size_t *len_out); /* malloc'd, NUL-terminated */
int vd_env_int(const char *name, int fallback);

/* ---- mutex ---- */
typedef struct vd_mutex vd_mutex;
vd_mutex *vd_mutex_new(void);
void vd_mutex_free(vd_mutex *m);
void vd_mutex_lock(vd_mutex *m);
void vd_mutex_unlock(vd_mutex *m);

#endif
